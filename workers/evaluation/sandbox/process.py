"""Runs one sandboxed process tree and watches it from the trusted side: capped reads of every pipe, wall-clock
deadline, tree-wide memory watchdog, and a kill that leaves nothing behind (verified by scanning /proc).

How the tree is found:
* bubblewrap: every process of the sandbox is a descendant of its pid-namespace init (orphans reparent to it;
  nothing can leave a pid namespace), and the namespace dies with that init.
* fallback: the runner leads a new session and the seccomp filter forbids setsid/setpgid, so every process keeps
  the runner's process group; one killpg reaches them all, orphans included. As root, each run also has its own uid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable

from . import tree

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")
_READ_CHUNK = 1 << 16
_MAX_ENTRIES = 20_000


@dataclasses.dataclass
class Outcome:
    """What the trusted side observed of one run."""

    returncode: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    result: bytes = b""
    stop: str | None = None
    """Why the parent stopped the run: wall, output, result, memory, disk (None: it ended by itself)."""
    stop_detail: str = ""
    wall_seconds: float = 0.0
    peak_memory: int = 0
    """Largest tree-wide anonymous RSS seen (bytes)."""
    peak_processes: int = 0
    max_cpu_seconds: float = 0.0
    """Most CPU time seen for one process of the tree."""
    output_bytes: int = 0
    """stdout + stderr bytes the candidate produced (the kept part is capped)."""
    leftovers: int = 0
    """Processes of the sandbox still found after the final sweep (must be 0)."""
    info: dict = dataclasses.field(default_factory=dict)


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


def _stat(pid: int) -> tuple[str, int, float, int] | None:
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
            if ident.uid is not None and _real_uid(pid) == ident.uid or pidns is not None and _pidns(pid) == pidns:
                found.add(pid)
            elif ident.pgid is not None:
                st = _stat(pid)
                if st and st[1] == ident.pgid and (ident.own_uid is None or _real_uid(pid) == ident.own_uid):
                    found.add(pid)
    live = []
    for pid in found:
        st = _stat(pid)
        if st and st[0] not in ("Z", "X"):
            live.append(pid)
    return live


def disk_usage(root: str, *, max_entries: int) -> tuple[int, int]:
    """(bytes allocated, entries) under ``root``: iterative, fd-relative (paths beyond PATH_MAX count), no symlinks
    followed; stops counting at ``max_entries``."""
    return tree.usage(root, max_entries=max_entries)


def _pidns(pid: int) -> str | None:
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


def run_process(argv: list[str], *, env: dict[str, str], pass_fds: tuple[int, ...], result_fd: int,
                info_fd: int | None, ident_for: Callable[[subprocess.Popen], Identity], wall_seconds: float,
                max_output: int, max_result: int, memory_limit: int, disk_dir: str | None = None,
                disk_limit: int = 0, poll: float = 0.2) -> Outcome:
    """Start ``argv`` and watch it until it ends or a limit stops it; then make sure the whole tree is gone.

    ``pass_fds`` are inherited by the child and closed here right after the start; ``result_fd``/``info_fd`` are
    the parent's read ends (closed at the end). ``ident_for(proc)`` says how to find the tree. ``disk_dir``: a host
    directory the sandbox can write (the fallback's), kept under ``disk_limit`` bytes and 20,000 entries.
    """
    out = Outcome()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, pass_fds=pass_fds, start_new_session=True, close_fds=True, cwd="/")
    except BaseException:
        for fd in (result_fd, info_fd):
            if fd is not None:
                os.close(fd)
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)
    ident: Identity = ident_for(proc)
    sel = selectors.DefaultSelector()
    bufs = {"stdout": bytearray(), "stderr": bytearray(), "result": bytearray(), "info": bytearray()}
    streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr", result_fd: "result"}
    if info_fd is not None:
        streams[info_fd] = "info"
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(streams)
    init_pid = pidns = None
    deadline = start + wall_seconds
    next_check = start + poll
    exited_at = None
    polls, files = 0, 0
    try:
        while open_fds:
            now = time.monotonic()
            if out.stop is None and now >= deadline:
                out.stop, out.stop_detail = "wall", f"{wall_seconds:g} s"
                break
            if exited_at is not None and now - exited_at > 0.5:
                break  # the main process is gone; whatever still holds the pipes is killed below
            timeout = max(0.0, min(deadline, next_check) - now)
            for key, _ in sel.select(timeout):
                fd = key.fd
                try:
                    data = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(fd)
                    open_fds.discard(fd)
                    continue
                name = streams[fd]
                if name in ("stdout", "stderr"):
                    room = max_output - out.output_bytes
                    bufs[name] += data[:max(room, 0)]
                    out.output_bytes += len(data)
                    if out.output_bytes > max_output:
                        out.stop, out.stop_detail = "output", f"more than {max_output} bytes"
                elif name == "result":
                    if len(bufs["result"]) + len(data) > max_result:
                        out.stop, out.stop_detail = "result", f"more than {max_result} bytes"
                    else:
                        bufs["result"] += data
                elif len(bufs["info"]) < 4096:
                    bufs["info"] += data
                    if init_pid is None:
                        init_pid, pidns = _parse_info(bufs["info"])
            if out.stop is not None:
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = time.monotonic()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + poll
                pids = sandbox_pids(ident, init_pid=init_pid, full_scan=init_pid is None)
                mem = cpu = 0.0
                polls += 1
                for pid in pids:
                    st = _stat(pid)
                    if st:
                        mem += st[3]
                        cpu = max(cpu, st[2])
                if polls % 5 == 1:  # open memfds, once a second (the seccomp filter refuses memfd_create)
                    files = sum(memfd_bytes(pid) for pid in pids)
                mem += files
                out.peak_memory = max(out.peak_memory, int(mem))
                out.peak_processes = max(out.peak_processes, len(pids))
                out.max_cpu_seconds = max(out.max_cpu_seconds, cpu)
                if mem > memory_limit:
                    out.stop = "memory"
                    out.stop_detail = f"{mem / 2**30:.2f} GiB across {len(pids)} processes"
                    break
                if disk_dir is not None:
                    used, entries = disk_usage(disk_dir, max_entries=_MAX_ENTRIES)
                    if used > disk_limit or entries >= _MAX_ENTRIES:
                        out.stop = "disk"
                        out.stop_detail = f"{used / 2**20:.1f} MiB in {entries} files"
                        break
    finally:
        out.leftovers = kill_tree(proc.pid, ident, pidns=pidns)  # before proc.wait(): its pid stays ours
        proc.wait()
        if disk_dir is not None and out.stop is None:  # a fast writer may have finished between two polls
            used, entries = disk_usage(disk_dir, max_entries=_MAX_ENTRIES)
            if used > disk_limit or entries >= _MAX_ENTRIES:
                out.stop, out.stop_detail = "disk", f"{used / 2**20:.1f} MiB in {entries} files"
        out.wall_seconds = time.monotonic() - start
        for fd in list(open_fds):  # drain what is already buffered, within the caps
            _drain(fd, streams[fd], bufs, out, max_output, max_result)
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        for fd in (result_fd, info_fd):
            if fd is not None:
                os.close(fd)
    out.returncode = proc.returncode
    out.stdout, out.stderr, out.result = bytes(bufs["stdout"]), bytes(bufs["stderr"]), bytes(bufs["result"])
    out.info = _parse_info_dict(bufs["info"])
    return out


def _drain(fd: int, name: str, bufs: dict, out: Outcome, max_output: int, max_result: int) -> None:
    for _ in range(64):
        try:
            data = os.read(fd, _READ_CHUNK)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        if name in ("stdout", "stderr"):
            bufs[name] += data[:max(max_output - out.output_bytes, 0)]
            out.output_bytes += len(data)
        elif name == "result" and len(bufs["result"]) + len(data) <= max_result:
            bufs["result"] += data


def _parse_info_dict(raw: bytes) -> dict:
    try:
        value = json.loads(raw.decode())
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}


def _parse_info(raw: bytes) -> tuple[int | None, str | None]:
    info = _parse_info_dict(raw)
    pid = info.get("child-pid")
    if not isinstance(pid, int):
        return None, None
    ns = info.get("pid-namespace")
    return pid, (f"pid:[{ns}]" if isinstance(ns, int) else _pidns(pid))
