"""Runs one sandboxed process tree and watches it from the trusted side: capped reads of every pipe, wall-clock
deadline, tree-wide memory watchdog, and a kill that leaves nothing behind (verified by scanning /proc; how the
tree is found and killed: ``procfs.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import subprocess
import time
from collections.abc import Callable

from .procfs import Identity, disk_usage, kill_tree, memfd_bytes, pid_namespace, proc_stat, sandbox_pids

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


def run_process(argv: list[str], *, env: dict[str, str], pass_fds: tuple[int, ...], result_fd: int,
                info_fd: int | None, ident_for: Callable[[subprocess.Popen], Identity], wall_seconds: float,
                max_output: int, max_result: int, memory_limit: int, disk_dir: str | None = None,
                disk_limit: int = 0, tmpfs: str | None = None, poll: float = 0.2) -> Outcome:
    """Start ``argv`` and watch it until it ends or a limit stops it; then make sure the whole tree is gone.

    ``pass_fds`` are inherited by the child and closed here right after the start; ``result_fd``/``info_fd`` are
    the parent's read ends (closed at the end). ``ident_for(proc)`` says how to find the tree. ``disk_dir``: a host
    directory the sandbox can write (the fallback's), kept under ``disk_limit`` bytes and 20,000 entries.
    ``tmpfs``: the sandbox's own tmpfs as its init sees it (bubblewrap's ``/tmp``): its size is capped by the mount,
    but not its inodes, whose kernel memory no process's RSS shows, so it is kept under 20,000 entries too.
    """
    out = Outcome()
    start = time.monotonic()
    proc = _start(argv, env=env, pass_fds=pass_fds, result_fd=result_fd, info_fd=info_fd)
    ident: Identity = ident_for(proc)
    sel, streams = _streams(proc, result_fd, info_fd)
    bufs = {"stdout": bytearray(), "stderr": bytearray(), "result": bytearray(), "info": bytearray()}
    open_fds = set(streams)
    init_pid = pidns = None
    deadline = start + wall_seconds
    next_check = start + poll
    exited_at, polls, files = None, 0, 0
    try:
        while open_fds:
            now = time.monotonic()
            if out.stop is None and now >= deadline:
                out.stop, out.stop_detail = "wall", f"{wall_seconds:g} s"
                break
            if exited_at is not None and now - exited_at > 0.5:
                break  # the main process is gone; whatever still holds the pipes is killed below
            _read_ready(sel, max(0.0, min(deadline, next_check) - now), streams, open_fds, bufs, out,
                        max_output=max_output, max_result=max_result)
            if init_pid is None and bufs["info"]:
                init_pid, pidns = _parse_info(bufs["info"])
            if out.stop is not None:
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = time.monotonic()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + poll
                polls += 1
                files = _check_tree(ident, init_pid, out, recount_files=polls % 5 == 1, files=files,
                                    memory_limit=memory_limit, disk_dir=disk_dir, disk_limit=disk_limit,
                                    tmpfs=tmpfs if exited_at is None else None)  # init's pid: bwrap's child
                if out.stop is not None:
                    break
    finally:
        out.leftovers = kill_tree(proc.pid, ident, pidns=pidns)  # before proc.wait(): its pid stays ours
        proc.wait()
        if disk_dir is not None and out.stop is None:  # a fast writer may have finished between two polls
            _check_disk(disk_dir, disk_limit, out)
        out.wall_seconds = time.monotonic() - start
        for fd in list(open_fds):  # drain what is already buffered, within the caps
            _drain(fd, streams[fd], bufs, out, max_output, max_result)
        _close(sel, proc, result_fd, info_fd)
    out.returncode = proc.returncode
    out.stdout, out.stderr, out.result = bytes(bufs["stdout"]), bytes(bufs["stderr"]), bytes(bufs["result"])
    out.info = _parse_info_dict(bufs["info"])
    return out


def _start(argv: list[str], *, env: dict[str, str], pass_fds: tuple[int, ...], result_fd: int,
           info_fd: int | None) -> subprocess.Popen:
    """Start the tree's leader in a new session; the inherited descriptors are closed here either way, the read
    ends too when the start fails."""
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, pass_fds=pass_fds, start_new_session=True, close_fds=True, cwd="/")
    except BaseException:
        for fd in (result_fd, info_fd):
            if fd is not None:
                os.close(fd)
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)


def _streams(proc: subprocess.Popen, result_fd: int, info_fd: int | None):
    """A selector over every pipe from the tree (non-blocking reads) and fd -> stream name."""
    sel = selectors.DefaultSelector()
    streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr", result_fd: "result"}
    if info_fd is not None:
        streams[info_fd] = "info"
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    return sel, streams


def _close(sel, proc: subprocess.Popen, result_fd: int, info_fd: int | None) -> None:
    sel.close()
    proc.stdout.close()
    proc.stderr.close()
    for fd in (result_fd, info_fd):
        if fd is not None:
            os.close(fd)


def _read_ready(sel, timeout: float, streams: dict, open_fds: set, bufs: dict, out: Outcome, *, max_output: int,
                max_result: int) -> None:
    """Read every pipe that has data within ``timeout`` (one chunk each); a pipe at its end is dropped."""
    for key, _ in sel.select(timeout):
        try:
            data = os.read(key.fd, _READ_CHUNK)
        except BlockingIOError:
            continue
        if not data:
            sel.unregister(key.fd)
            open_fds.discard(key.fd)
            continue
        _take(streams[key.fd], data, bufs, out, max_output=max_output, max_result=max_result)


def _take(name: str, data: bytes, bufs: dict, out: Outcome, *, max_output: int, max_result: int) -> None:
    """Keep a chunk read from stream ``name`` within its cap; passing the output or result cap stops the run."""
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


def _check_tree(ident: Identity, init_pid: int | None, out: Outcome, *, recount_files: bool, files: int,
                memory_limit: int, disk_dir: str | None, disk_limit: int, tmpfs: str | None = None) -> int:
    """One poll of the tree: peak memory (anonymous RSS plus open memfds), processes and CPU into ``out``; the
    memory or disk limit passed stops the run. Returns the memfd bytes counted (recounted once a second)."""
    pids = sandbox_pids(ident, init_pid=init_pid, full_scan=init_pid is None)
    mem = cpu = 0.0
    for pid in pids:
        st = proc_stat(pid)
        if st:
            mem += st[3]
            cpu = max(cpu, st[2])
    if recount_files:  # open memfds, once a second (the seccomp filter refuses memfd_create)
        files = sum(memfd_bytes(pid) for pid in pids)
    mem += files
    out.peak_memory = max(out.peak_memory, int(mem))
    out.peak_processes = max(out.peak_processes, len(pids))
    out.max_cpu_seconds = max(out.max_cpu_seconds, cpu)
    if mem > memory_limit:
        out.stop = "memory"
        out.stop_detail = f"{mem / 2**30:.2f} GiB across {len(pids)} processes"
    elif disk_dir is not None:
        _check_disk(disk_dir, disk_limit, out)
    elif tmpfs is not None and init_pid is not None:
        _check_inodes(f"/proc/{init_pid}/root{tmpfs}", out)
    return files


def _check_disk(disk_dir: str, disk_limit: int, out: Outcome) -> None:
    used, entries = disk_usage(disk_dir, max_entries=_MAX_ENTRIES)
    if used > disk_limit or entries >= _MAX_ENTRIES:
        out.stop, out.stop_detail = "disk", f"{used / 2**20:.1f} MiB in {entries} files"


def _check_inodes(path: str, out: Outcome) -> None:
    """Stop the run when the tmpfs at ``path`` holds ``_MAX_ENTRIES`` inodes or more (empty files, directories and
    links take no blocks, so the tmpfs size cap never stops them: 8 s of creating empty files pinned 2.2 GiB of
    kernel memory, measured)."""
    try:
        st = os.statvfs(path)
    except OSError:  # the sandbox is already gone
        return
    used = st.f_files - st.f_ffree
    if used >= _MAX_ENTRIES:
        used_bytes = (st.f_blocks - st.f_bfree) * st.f_frsize
        out.stop, out.stop_detail = "disk", f"{used_bytes / 2**20:.1f} MiB in {used} files"


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
    return pid, (f"pid:[{ns}]" if isinstance(ns, int) else pid_namespace(pid))
