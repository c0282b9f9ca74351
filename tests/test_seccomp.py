"""The hand-built seccomp filter: syscall tables checked against the kernel headers, the program's decisions
checked with a reference interpreter, and the real kernel enforcing it in a child process."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workers.evaluation.sandbox import seccomp

ERRNO_EPERM = 0x00050000 | errno.EPERM
ERRNO_ENOSYS = 0x00050000 | errno.ENOSYS
HEADERS = {"x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
           "aarch64": Path("/usr/include/asm-generic/unistd.h")}


@pytest.mark.parametrize("arch", sorted(seccomp.SYSCALLS))
def test_syscall_numbers_match_the_kernel_headers(arch):
    header = HEADERS[arch]
    if not header.exists():
        pytest.skip(f"{header} not installed (linux-libc-dev)")
    defined = {m.group(1): int(m.group(2))
               for m in re.finditer(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", header.read_text())}
    for name, number in seccomp.SYSCALLS[arch].items():
        assert defined.get(name) == number, f"{arch} {name}: table {number}, header {defined.get(name)}"


def nr(name: str, arch: str = "x86_64") -> int:
    return seccomp.SYSCALLS[arch][name]


@pytest.mark.parametrize("arch", sorted(seccomp.SYSCALLS))
@pytest.mark.parametrize("mode", ["bwrap", "fallback"])
def test_every_denied_call_fails_with_eperm_and_ordinary_calls_pass(arch, mode):
    program = seccomp.build_program(mode, arch)
    audit = seccomp.AUDIT_ARCH[arch]
    for name in seccomp.ALWAYS_DENIED:
        if name in seccomp.SYSCALLS[arch]:
            assert seccomp.evaluate(program, nr(name, arch), audit_arch=audit) == ERRNO_EPERM, name
    for ordinary in (0, 1, 3, 9, 63):  # read/write/close/mmap/... on x86_64 (arbitrary numbers elsewhere)
        if ordinary not in seccomp.SYSCALLS[arch].values():
            assert seccomp.evaluate(program, ordinary, audit_arch=audit) == seccomp.RET_ALLOW


def test_clone_may_make_threads_and_processes_but_no_namespaces():
    program = seccomp.build_program("bwrap", "x86_64")
    thread_flags = 0x003D0F00  # what glibc passes for pthread_create
    assert seccomp.evaluate(program, nr("clone"), (thread_flags,)) == seccomp.RET_ALLOW
    assert seccomp.evaluate(program, nr("clone"), (17,)) == seccomp.RET_ALLOW  # fork(): SIGCHLD
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x08000000, 0x00000080):
        assert seccomp.evaluate(program, nr("clone"), (17 | flag,)) == ERRNO_EPERM
    assert seccomp.evaluate(program, nr("clone3")) == ERRNO_ENOSYS  # glibc then falls back to clone


def test_no_sockets_in_either_mode_socketpair_included():
    """Queued socket data is kernel memory the watchdog cannot see (tests/hostile/socket_memory.py)."""
    for mode in ("bwrap", "fallback"):
        program = seccomp.build_program(mode, "x86_64")
        for family in (1, 2, 10, 16, 17):  # UNIX, INET, INET6, NETLINK, PACKET
            assert seccomp.evaluate(program, nr("socket"), (family, 1, 0)) == ERRNO_EPERM
        assert seccomp.evaluate(program, nr("socketpair"), (1, 1, 0, 0)) == ERRNO_EPERM
    arm = seccomp.build_program("bwrap", "aarch64")
    assert seccomp.evaluate(arm, nr("socketpair", "aarch64"), (1, 1, 0, 0),
                            audit_arch=seccomp.AUDIT_ARCH["aarch64"]) == ERRNO_EPERM


def test_the_fallback_keeps_the_process_group_and_signals_only_it():
    program = seccomp.build_program("fallback", "x86_64")
    assert seccomp.evaluate(program, nr("kill"), (0, 9)) == seccomp.RET_ALLOW
    for pid in (1, 1234, -1, -4321, 0xFFFFFFFF):
        assert seccomp.evaluate(program, nr("kill"), (pid, 9)) == ERRNO_EPERM
    for name in ("setsid", "setpgid", "tgkill", "tkill", "pidfd_open", "pidfd_send_signal"):
        assert seccomp.evaluate(program, nr(name)) == ERRNO_EPERM
    bwrap = seccomp.build_program("bwrap", "x86_64")
    assert seccomp.evaluate(bwrap, nr("setsid")) == seccomp.RET_ALLOW  # the pid namespace contains it there


def test_only_the_personality_query_is_allowed():
    program = seccomp.build_program("bwrap", "x86_64")
    assert seccomp.evaluate(program, nr("personality"), (0xFFFFFFFF,)) == seccomp.RET_ALLOW
    assert seccomp.evaluate(program, nr("personality"), (0x0040000,)) == ERRNO_EPERM


def test_other_abis_are_killed_and_x32_calls_refused():
    program = seccomp.build_program("bwrap", "x86_64")
    assert seccomp.evaluate(program, 0, audit_arch=0x40000003) == seccomp.RET_KILL_PROCESS  # i386 via int 0x80
    assert seccomp.evaluate(program, 0x40000000 | 59) == ERRNO_EPERM


def test_no_exec_blocks_exactly_execve_and_execveat():
    program = seccomp.build_program("no_exec", "x86_64")
    assert seccomp.evaluate(program, nr("execve")) == ERRNO_EPERM
    assert seccomp.evaluate(program, nr("execveat")) == ERRNO_EPERM
    assert seccomp.evaluate(program, nr("clone"), (17,)) == seccomp.RET_ALLOW
    assert seccomp.evaluate(program, nr("socket"), (2, 1, 0)) == seccomp.RET_ALLOW


def test_assembled_programs_are_whole_sock_filter_arrays():
    for mode in seccomp.MODES:
        raw = seccomp.build_filter(mode, "x86_64")
        assert len(raw) % 8 == 0 and 8 < len(raw) < 4096 * 8
    with pytest.raises(ValueError, match="unknown seccomp mode"):
        seccomp.build_program("lenient", "x86_64")


def test_an_unknown_architecture_is_reported_not_guessed(monkeypatch):
    monkeypatch.setattr(seccomp.platform, "machine", lambda: "riscv64")
    with pytest.raises(seccomp.SeccompUnsupported, match="riscv64"):
        seccomp.machine_arch()


def test_the_kernel_enforces_the_fallback_filter_in_a_child_process():
    """Install the filter with the runner's own code in a fresh interpreter and try what it forbids."""
    script = f"""
import os, socket, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from workers.evaluation.sandbox import runner as r
r._prctl(38, 1)
r._install_seccomp(bytes.fromhex({seccomp.build_filter("fallback").hex()!r}))
r._install_seccomp(bytes.fromhex({seccomp.build_filter("no_exec").hex()!r}))
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def unshare_user():
    if libc.unshare(0x10000000) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
results = []
for name, call in (("setsid", os.setsid), ("socket", lambda: socket.socket()),
                   ("socketpair", socket.socketpair),
                   ("kill", lambda: os.kill(os.getppid(), 0)), ("exec", lambda: os.execv("/bin/true", ["true"])),
                   ("unshare", unshare_user)):
    try:
        call()
        results.append(name + "=allowed")
    except PermissionError:
        results.append(name + "=EPERM")
pid = os.fork()
if pid == 0:
    os._exit(7)
results.append("fork=" + str(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])))
print(" ".join(results))
"""
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["setsid=EPERM", "socket=EPERM", "socketpair=EPERM", "kill=EPERM", "exec=EPERM", "unshare=EPERM",
                                  "fork=7"]


def test_the_runner_never_imports_project_code():
    """The in-sandbox program must be self-contained: it runs without the project on sys.path."""
    source = (Path(__file__).resolve().parents[1] / "workers/evaluation/sandbox/runner.py").read_text()
    assert not re.search(r"^\s*(from|import)\s+(workers|scheduler|db|training)\b", source, re.MULTILINE)
