"""A hand-built classic-BPF seccomp filter for the candidate sandbox (stdlib only, no libseccomp).

The filter allows everything except a deny list of system calls a circuit builder never needs and that widen the
kernel attack surface or reach outside the sandbox (mounts, namespaces, ptrace, BPF, keyrings, modules, io_uring,
...). Denied calls fail with EPERM (``clone3`` with ENOSYS, so that glibc falls back to ``clone``, whose flags the
filter can inspect). A call from another architecture (e.g. the i386 ABI through ``int 0x80`` on x86_64, or x32)
kills the process, so the filter cannot be bypassed by switching ABIs.

Three programs are built:

* ``bwrap``: installed by bubblewrap (``--seccomp FD``) before the interpreter starts. No socket at all, AF_UNIX
  and ``socketpair`` included: their send buffers are kernel memory no watchdog sees (net.core.wmem_max per
  socket, several GiB per sandbox through its 64 processes x 256 descriptors), and the network namespace is
  empty anyway.
* ``fallback``: installed by the runner itself when bubblewrap is unusable. Adds what namespaces would otherwise
  give: no leaving the process group (``setsid``/``setpgid``, so the whole tree dies with one
  ``killpg``), no signals except to the own process group, no pidfds.
* ``no_exec``: installed by the runner right before the candidate's code runs, in both modes: ``execve`` and
  ``execveat`` fail, so ``os.system``/``subprocess`` cannot start any program.

Each program is the raw ``struct sock_filter`` array (what ``bwrap --seccomp`` reads and what
``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ...)`` takes).
"""

from __future__ import annotations

import errno
import platform
import struct

# BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_AND_K = 0x54
RET_KILL_PROCESS = 0x80000000
RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]. Both supported arches are
# little-endian, so the low 32 bits of args[i] sit at 16 + 8 * i.
_OFF_NR = 0
_OFF_ARCH = 4


def _arg_low(index: int) -> int:
    return 16 + 8 * index


# Namespace flags of clone(2): CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
CLONE_NEW_MASK = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
PERSONALITY_QUERY = 0xFFFFFFFF

# System call numbers. x86_64 from asm/unistd_64.h, aarch64 from asm-generic/unistd.h (tests compare both with the
# kernel headers when they are installed).
SYSCALLS = {
    "x86_64": {
        "socket": 41, "clone": 56, "execve": 59, "kill": 62, "ptrace": 101, "syslog": 103, "setpgid": 109,
        "setsid": 112, "rt_sigqueueinfo": 129, "uselib": 134, "personality": 135, "vhangup": 153,
        "modify_ldt": 154, "pivot_root": 155, "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164,
        "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
        "init_module": 175, "delete_module": 176, "quotactl": 179, "nfsservctl": 180, "tkill": 200,
        "lookup_dcookie": 212, "clock_settime": 227, "tgkill": 234, "kexec_load": 246, "add_key": 248,
        "request_key": 249, "keyctl": 250, "unshare": 272, "rt_tgsigqueueinfo": 297, "perf_event_open": 298,
        "fanotify_init": 300, "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305,
        "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
        "kexec_file_load": 320, "bpf": 321, "execveat": 322, "userfaultfd": 323, "pidfd_send_signal": 424,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434,
        "clone3": 435, "pidfd_getfd": 438, "mount_setattr": 442, "quotactl_fd": 443,
        "mmap": 9, "socketpair": 53, "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65, "semctl": 66, "shmdt": 67,
        "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "semtimedop": 220, "mq_open": 240,
        "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
        "inotify_init": 253, "inotify_add_watch": 254, "inotify_rm_watch": 255, "inotify_init1": 294,
        "fanotify_mark": 301, "memfd_create": 319, "memfd_secret": 447,
    },
    "aarch64": {
        "lookup_dcookie": 18, "umount2": 39, "mount": 40, "pivot_root": 41, "nfsservctl": 42, "vhangup": 58,
        "quotactl": 60, "chroot": 51, "acct": 89, "personality": 92, "unshare": 97, "kexec_load": 104,
        "init_module": 105, "delete_module": 106, "clock_settime": 112, "syslog": 116, "ptrace": 117,
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "reboot": 142, "setpgid": 154,
        "setsid": 157, "settimeofday": 170, "adjtimex": 171, "socket": 198, "add_key": 217, "request_key": 218,
        "keyctl": 219, "clone": 220, "execve": 221, "swapon": 224, "swapoff": 225, "rt_tgsigqueueinfo": 240,
        "perf_event_open": 241, "fanotify_init": 262, "name_to_handle_at": 264, "open_by_handle_at": 265,
        "clock_adjtime": 266, "setns": 268, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
        "finit_module": 273, "bpf": 280, "execveat": 281, "userfaultfd": 282, "kexec_file_load": 294,
        "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438, "mount_setattr": 442, "quotactl_fd": 443,
        "mmap": 222, "socketpair": 199, "inotify_init1": 26, "inotify_add_watch": 27, "inotify_rm_watch": 28, "mq_open": 180,
        "mq_unlink": 181, "mq_timedsend": 182, "mq_timedreceive": 183, "mq_notify": 184, "mq_getsetattr": 185,
        "msgget": 186, "msgctl": 187, "msgrcv": 188, "msgsnd": 189, "semget": 190, "semctl": 191,
        "semtimedop": 192, "semop": 193, "shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197,
        "fanotify_mark": 263, "memfd_create": 279, "memfd_secret": 447,
    },
}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000

# Denied outright in every mode: mounts and namespaces, tracing and other processes' memory, kernel extension and
# BPF, keyrings, io_uring (can open sockets and files behind the filter's back), clocks, swap, reboot, accounting,
# handle-based opens (the classic container escape), legacy x86 I/O privileges.
ALWAYS_DENIED = (
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr", "unshare", "setns", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "pidfd_getfd", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "acct", "swapon", "swapoff", "reboot", "syslog", "quotactl", "quotactl_fd",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "vhangup", "fanotify_init", "settimeofday",
    "clock_settime", "clock_adjtime", "adjtimex", "nfsservctl", "uselib", "iopl", "ioperm", "modify_ldt",
    *("memfd_create", "memfd_secret"), *("socket", "socketpair"),
    *("shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semctl",
      "semtimedop"),
    *("mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr"),
    *("inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark"),
)
"""Also denied: sockets of every family, ``socketpair`` included (queued data is unaccounted kernel memory, up to
``net.core.wmem_max`` per socket: 3 forked processes with 110 socketpairs each held 2.5 GiB outside the memory
watchdog's view), shared memory the memory watchdog cannot attribute to a process (memfd, SysV shm, POSIX message
queues; SysV objects also outlive the run), SysV semaphores and message queues (they outlive the run too), and
inotify/fanotify (watching other processes' file activity). Neither Python, numpy, scipy nor Qiskit needs them to
build a circuit (the scientific-stack import test runs under this filter)."""
MAP_SHARED = 0x01
MAP_ANONYMOUS = 0x20
# Extra denials when there are no namespaces (the fallback): no leaving the process group, no signals or pidfds.
FALLBACK_DENIED = ("setsid", "setpgid", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
                   "pidfd_send_signal", "pidfd_open")
MODES = ("bwrap", "fallback", "no_exec")


class SeccompUnsupported(RuntimeError):
    """No syscall table for this machine's architecture."""


def machine_arch() -> str:
    """``x86_64`` or ``aarch64`` (the architectures with a syscall table here); raise otherwise."""
    arch = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    if arch not in SYSCALLS:
        raise SeccompUnsupported(f"no seccomp syscall table for architecture {arch!r} (have: x86_64, aarch64)")
    return arch


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k & 0xFFFFFFFF)


def _errno(value: int) -> int:
    return _RET_ERRNO | (value & 0xFFFF)


def _rule_deny(nr: int, err: int = errno.EPERM) -> list:
    """if nr == NR: return ERRNO."""
    return [_ins(_JEQ_K, nr, 0, 1), _ins(_RET_K, _errno(err))]


def _rule_allow_only(nr: int, arg: int, allowed: tuple[int, ...]) -> list:
    """if nr == NR: allow when the low 32 bits of args[arg] is one of ``allowed``, else EPERM."""
    body = [_ins(_LD_W_ABS, _arg_low(arg))]
    n = len(allowed)
    for i, value in enumerate(allowed):
        # jump to the ALLOW at the end (skip the remaining compares and the ERRNO), else next compare
        body.append(_ins(_JEQ_K, value, n - i, 0))
    body += [_ins(_RET_K, _errno(errno.EPERM)), _ins(_RET_K, RET_ALLOW)]
    return [_ins(_JEQ_K, nr, 0, len(body))] + body


def _rule_deny_flags(nr: int, arg: int, mask: int) -> list:
    """if nr == NR: EPERM when args[arg] has any bit of ``mask``, else allow."""
    body = [_ins(_LD_W_ABS, _arg_low(arg)), _ins(_JSET_K, mask, 0, 1), _ins(_RET_K, _errno(errno.EPERM)),
            _ins(_RET_K, RET_ALLOW)]
    return [_ins(_JEQ_K, nr, 0, len(body))] + body


def _rule_deny_all_flags(nr: int, arg: int, mask: int) -> list:
    """if nr == NR: EPERM when args[arg] has every bit of ``mask`` (mmap: MAP_SHARED | MAP_ANONYMOUS, shared
    anonymous memory that survives in other processes), else allow."""
    body = [_ins(_LD_W_ABS, _arg_low(arg)), _ins(_AND_K, mask), _ins(_JEQ_K, mask, 0, 1),
            _ins(_RET_K, _errno(errno.EPERM)), _ins(_RET_K, RET_ALLOW)]
    return [_ins(_JEQ_K, nr, 0, len(body))] + body


def build_program(mode: str, arch: str | None = None) -> list[tuple[int, int, int, int]]:
    """The filter for ``mode`` (one of MODES) as a list of (code, jt, jf, k) instructions."""
    if mode not in MODES:
        raise ValueError(f"unknown seccomp mode {mode!r}; expected one of {MODES}")
    arch = arch or machine_arch()
    nrs = SYSCALLS[arch]
    prog = [_ins(_LD_W_ABS, _OFF_ARCH), _ins(_JEQ_K, AUDIT_ARCH[arch], 1, 0), _ins(_RET_K, RET_KILL_PROCESS),
            _ins(_LD_W_ABS, _OFF_NR)]
    if arch == "x86_64":  # x32 ABI calls carry bit 30
        prog += [_ins(_JGE_K, _X32_SYSCALL_BIT, 0, 1), _ins(_RET_K, _errno(errno.EPERM))]
    if mode == "no_exec":
        prog += _rule_deny(nrs["execve"]) + _rule_deny(nrs["execveat"])
    else:
        for name in ALWAYS_DENIED:
            if name in nrs:
                prog += _rule_deny(nrs[name])
        prog += _rule_deny(nrs["clone3"], errno.ENOSYS)
        prog += _rule_deny_flags(nrs["clone"], 0, CLONE_NEW_MASK)
        prog += _rule_allow_only(nrs["personality"], 0, (PERSONALITY_QUERY,))
        prog += _rule_deny_all_flags(nrs["mmap"], 3, MAP_SHARED | MAP_ANONYMOUS)
        if mode == "fallback":
            for name in FALLBACK_DENIED:
                prog += _rule_deny(nrs[name])
            prog += _rule_allow_only(nrs["kill"], 0, (0,))  # kill(0, sig): the own process group only
    prog.append(_ins(_RET_K, RET_ALLOW))
    return prog


def assemble(program: list[tuple[int, int, int, int]]) -> bytes:
    """The raw ``struct sock_filter`` array (u16 code, u8 jt, u8 jf, u32 k; native byte order)."""
    if len(program) > 4096:
        raise ValueError("seccomp program longer than BPF_MAXINSNS (4096)")
    for code, jt, jf, _k in program:
        if not (0 <= jt <= 255 and 0 <= jf <= 255 and 0 <= code <= 0xFFFF):
            raise ValueError("BPF jump offset out of range")
    return b"".join(struct.pack("=HBBI", *ins) for ins in program)


def build_filter(mode: str, arch: str | None = None) -> bytes:
    """Assembled filter for ``mode`` on ``arch`` (default: this machine)."""
    return assemble(build_program(mode, arch))


def evaluate(program: list[tuple[int, int, int, int]], nr: int, args: tuple[int, ...] = (),
             audit_arch: int | None = None) -> int:
    """Run ``program`` on one system call in Python (a reference interpreter for the tests)."""
    if audit_arch is None:
        audit_arch = AUDIT_ARCH[machine_arch()]
    words = {_OFF_NR: nr & 0xFFFFFFFF, _OFF_ARCH: audit_arch}
    for i, value in enumerate(tuple(args) + (0,) * (6 - len(args))):
        words[_arg_low(i)] = value & 0xFFFFFFFF
        words[_arg_low(i) + 4] = (value >> 32) & 0xFFFFFFFF
    acc, pc = 0, 0
    while pc < len(program):
        code, jt, jf, k = program[pc]
        if code == _LD_W_ABS:
            acc = words[k]
        elif code == _AND_K:
            acc &= k
        elif code == _RET_K:
            return k
        elif code in (_JEQ_K, _JGE_K, _JSET_K):
            cond = {_JEQ_K: acc == k, _JGE_K: acc >= k, _JSET_K: bool(acc & k)}[code]
            pc += jt if cond else jf
        else:
            raise ValueError(f"unexpected opcode {code:#x}")
        pc += 1
    raise ValueError("program fell off its end")
