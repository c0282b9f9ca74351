# Memory the watchdog could not see: anonymous MAP_SHARED across forked processes, memfds that are never mapped,
# SysV shared memory that outlives the run, and inotify watches on other processes' files. Each attempt prints
# what happened; the circuit is honest, so only the limits decide the verdict.
import ctypes
import mmap
import os
import time

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

libc = ctypes.CDLL(None, use_errno=True)
MiB = 1 << 20


def attempt(name, action):
    try:
        print(name, "OK", action())
    except OSError as exc:
        print(name, "REFUSED", exc.errno)


def shared_anonymous():
    area = mmap.mmap(-1, 384 * MiB, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    for offset in range(0, len(area), 4096):
        area[offset] = 1
    for _ in range(4):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
    return len(area)


def memfds():
    fds = []
    for _ in range(24):
        fd = os.memfd_create("hoard")
        os.ftruncate(fd, 64 * MiB)
        os.posix_fallocate(fd, 0, 64 * MiB)
        fds.append(fd)
    return len(fds)


def sysv():
    ident = libc.shmget(0, 64 * MiB, 0o1000 | 0o666)  # IPC_PRIVATE, IPC_CREAT
    if ident < 0:
        raise OSError(ctypes.get_errno(), "shmget")
    address = libc.shmat(ident, None, 0)
    ctypes.memset(ctypes.c_void_p(address), 7, 64 * MiB)
    return ident


def inotify():
    fd = libc.inotify_init1(0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    return libc.inotify_add_watch(fd, b"/tmp", 0xFFF)


KEEP = [attempt(name, action) for name, action in (("SHARED", shared_anonymous), ("MEMFD", memfds),
                                                   ("SYSV", sysv), ("INOTIFY", inotify))]


def create_ansatz(num_qubits):
    qc = QuantumCircuit(num_qubits)
    qc.ry(Parameter("t"), 0)
    return qc
