# Ask the kernel directly for things a circuit builder never needs. Prints "name result errno" per call.
import ctypes
import os

from qiskit import QuantumCircuit

libc = ctypes.CDLL(None, use_errno=True)


def attempt(name, fn):
    ctypes.set_errno(0)
    try:
        result = fn()
    except BaseException as exc:
        print("CALL", name, "exception", type(exc).__name__)
        return
    print("CALL", name, result, ctypes.get_errno())


def create_ansatz(num_qubits):
    attempt("unshare_user", lambda: libc.unshare(0x10000000))
    attempt("unshare_net", lambda: libc.unshare(0x40000000))
    attempt("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
    attempt("ptrace_attach_parent", lambda: libc.ptrace(16, os.getppid(), None, None))
    attempt("chroot", lambda: libc.chroot(b"/"))
    attempt("setuid_root", lambda: libc.setuid(0))
    attempt("bpf", lambda: libc.syscall(321 if os.uname().machine == "x86_64" else 280, 0, None, 0))
    attempt("keyctl", lambda: libc.syscall(250 if os.uname().machine == "x86_64" else 219, 0, 0, 0, 0, 0))
    attempt("io_uring_setup", lambda: libc.syscall(425, 8, None))
    attempt("userfaultfd", lambda: libc.syscall(323 if os.uname().machine == "x86_64" else 282, 0))
    attempt("perf_event_open", lambda: libc.syscall(298 if os.uname().machine == "x86_64" else 241, None, 0, -1, -1, 0))
    attempt("personality", lambda: libc.personality(0x0040000))
    attempt("socket_inet", lambda: libc.socket(2, 1, 0))
    attempt("socket_inet6", lambda: libc.socket(10, 1, 0))
    attempt("socket_packet", lambda: libc.socket(17, 3, 0))
    attempt("socket_netlink", lambda: libc.socket(16, 3, 0))
    return QuantumCircuit(num_qubits)
