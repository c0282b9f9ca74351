"""The sandbox's processes as /proc shows them: memory and CPU of one process, the memfds it holds, every process
of a sandbox (found by pid namespace, per-run uid or process group, never by a guess), and a kill of them all that
sweeps /proc until nothing is left.

How the tree is found:
* bubblewrap: every process of the sandbox is a descendant of its pid-namespace init (orphans reparent to it;
  nothing can leave a pid namespace), and the namespace dies with that init.
* fallback: the runner leads a new session and the seccomp filter forbids setsid/setpgid, so every process keeps
  the runner's process group; one killpg reaches them all, orphans included. As root, each run also has its own uid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time

from . import tree

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class Identity:
    """How to recognise the sandbox's processes."""

    uid: int | None = None
    """Slot uid (root runs): every process with this real uid belongs to the sandbox."""
    pgid: int | None = None
    """Fallback: the runner's process group."""
    own_uid: int | None = None
    """Fallback without root: only processes of this uid may match the process group."""


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def proc_stat(pid: int) -> tuple[str, int, float, int] | None:
    """(state, pgrp, cpu seconds, memory bytes) of a process, None when gone. Memory is ``_memory(pid)``."""
    raw = _read(f"/proc/{pid}/stat")
    if raw is None:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()
    mem = _memory(pid)
    if mem is None:
        return None
    return fields[0].decode(), int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICKS, mem


def _memory(pid: int) -> int | None:
    """Pss_Anon + Pss_Shmem of a process (``smaps_rollup``): private memory plus its share of shared anonymous
    memory, SysV/POSIX shared memory and mapped memfds, so memory shared across processes counts once in the sum
    and never zero times. Where smaps_rollup cannot be read, anonymous RSS from statm."""
    rollup = _read(f"/proc/{pid}/smaps_rollup")
    if rollup:
        total, seen = 0, 0
        for line in rollup.splitlines():
            if line.startswith((b"Pss_Anon:", b"Pss_Shmem:")):
                total += int(line.split()[1]) * 1024
                seen += 1
        if seen == 2:
            return total
    statm = _read(f"/proc/{pid}/statm")
    if statm is None:
        return None
    mem = statm.split()
    return max(int(mem[1]) - int(mem[2]), 0) * _PAGE if len(mem) > 2 else 0


def memfd_bytes(pid: int) -> int:
    """Bytes held by memfds (and other deleted tmpfs files) a process has open but may never have mapped."""
    total = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds[:4096]:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("/memfd:") or target.endswith(" (deleted)"):
                total += os.stat(f"/proc/{pid}/fd/{fd}").st_blocks * 512
        except OSError:
            continue
    return total


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        raw = _read(f"/proc/{pid}/task/{tid}/children")
        if raw:
            out += [int(x) for x in raw.split()]
    return out


def _descendants(root: int) -> list[int]:
    seen, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack += _children(pid)
    return seen


def _real_uid(pid: int) -> int | None:
    raw = _read(f"/proc/{pid}/status")
    if raw is None:
        return None
    for line in raw.splitlines():
        if line.startswith(b"Uid:"):
            return int(line.split()[1])
    return None


def _all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def sandbox_pids(ident: Identity, *, init_pid: int | None = None, pidns: str | None = None,
                 full_scan: bool = False) -> list[int]:
    """Live (non-zombie) processes of the sandbox. ``full_scan`` checks every process on the host."""
    me = os.getpid()
    found: set[int] = set()
    if init_pid is not None and not full_scan:
        found.update(_descendants(init_pid))
    else:
        for pid in _all_pids():
            if pid == me:
                continue
            if ident.uid is not None and _real_uid(pid) == ident.uid or pidns is not None and pid_namespace(pid) == pidns:
                found.add(pid)
            elif ident.pgid is not None:
                st = proc_stat(pid)
                if st and st[1] == ident.pgid and (ident.own_uid is None or _real_uid(pid) == ident.own_uid):
                    found.add(pid)
    live = []
    for pid in found:
        st = proc_stat(pid)
        if st and st[0] not in ("Z", "X"):
            live.append(pid)
    return live


def disk_usage(root: str, *, max_entries: int) -> tuple[int, int]:
    """(bytes allocated, entries) under ``root``: iterative, fd-relative (paths beyond PATH_MAX count), no symlinks
    followed; stops counting at ``max_entries``."""
    return tree.usage(root, max_entries=max_entries)


def pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def kill_tree(leader: int | None, ident: Identity, *, pidns: str | None, grace: float = 2.0) -> int:
    """SIGKILL everything of the sandbox; sweep /proc until nothing is left. Returns how many survived.

    ``leader`` is the process group the parent started (bwrap, whose death kills the pid namespace, or the
    fallback runner)."""
    if leader is not None and leader > 1:
        with contextlib.suppress(OSError):
            os.killpg(leader, signal.SIGKILL)
    if ident.pgid is not None and ident.pgid > 1:
        with contextlib.suppress(OSError):
            os.killpg(ident.pgid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    left: list[int] = []
    while True:
        # only strong identities here (pid namespace, per-run uid, process group): never "descendants of the init",
        # whose pid could belong to an unrelated process once the init is gone
        left = sandbox_pids(ident, pidns=pidns, full_scan=True)
        if not left or time.monotonic() > deadline:
            break
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return len(left)
