"""Run untrusted candidate code in an isolated process and bring back only serialised circuits.

``run_candidate(code, sizes)`` starts one interpreter per candidate inside bubblewrap (namespaces, read-only
interpreter, private tmpfs, no network, seccomp, Landlock, rlimits, an unprivileged uid) or, where bubblewrap is
unusable, in the weaker fallback (rlimits, unprivileged uid, seccomp, Landlock, new session), which logs a loud
warning every time. The candidate's ``create_ansatz(n)`` is called for each size; circuits come back as QPY bytes
that only :func:`load_circuit` may deserialise. See docs/sandbox.md.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..errors import SandboxError
from ..results import STATUS_ERROR, SandboxResult
from . import ipc
from . import isolation as iso
from .config import SandboxConfig
from .outcome import BWRAP, FALLBACK, interpret
from .process import Outcome, run_process
from .procfs import Identity, kill_tree, sandbox_pids
from .qpy_guard import DEFAULT_MAX_CIRCUIT_BYTES, SAFE_QPY_VERSIONS, load_circuit

__all__ = ["DEFAULT_MAX_CIRCUIT_BYTES", "SAFE_QPY_VERSIONS", "IsolationStatus", "SandboxConfig", "isolation_status",
           "load_circuit", "run_candidate"]

log = logging.getLogger("qmind.sandbox")
# Interpreter + numpy + qiskit take ~60-100 MB of anonymous memory; the tree-wide watchdog allows this on top.
BASELINE_MEMORY = 256 << 20
MAX_SIZE = 1024
_PY_FLAGS = ("-I", "-S", "-B", "-u")
_FALLBACK_WARNING = ("SANDBOX FALLBACK IN USE: candidate code runs WITHOUT namespace isolation (%s). Only rlimits, "
                     "an unprivileged uid (when root), seccomp and Landlock protect this host. Install bubblewrap and "
                     "allow user namespaces (see docs/sandbox.md).")


@functools.lru_cache(maxsize=1)
def _runner_source() -> str:
    return (Path(__file__).with_name("runner.py")).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _qpy_version() -> int:
    from qiskit.qpy import common
    return int(common.QPY_VERSION)


@dataclasses.dataclass(frozen=True)
class IsolationStatus:
    """What this host provides; ``mode`` is what ``isolation="auto"`` picks."""

    mode: str
    bwrap: bool
    bwrap_reason: str
    seccomp: bool
    seccomp_reason: str
    landlock_abi: int
    unprivileged_uid: bool
    """True when the worker is root and candidates run under per-slot unprivileged uids."""

    @property
    def strong(self) -> bool:
        return self.mode == BWRAP

    def summary(self) -> str:
        if self.strong:
            head = "sandbox: bubblewrap isolation (namespaces, read-only interpreter, no network)"
        else:
            head = f"SANDBOX WARNING: bubblewrap unusable ({self.bwrap_reason}); WEAKER FALLBACK in use"
        parts = [head, "seccomp on" if self.seccomp else f"seccomp OFF ({self.seccomp_reason})",
                 f"landlock ABI {self.landlock_abi}" if self.landlock_abi else "landlock unavailable",
                 "per-run unprivileged uid" if self.unprivileged_uid else "candidate runs as the worker's uid"]
        return "; ".join(parts)


def isolation_status(config: SandboxConfig | None = None) -> IsolationStatus:
    """Probe the host once (cached): can bubblewrap start the interpreter with our namespaces and seccomp?"""
    config = config or SandboxConfig()
    return _probe(config.bwrap_path, config.python, config.extra_read_paths, iso.is_root())


@functools.lru_cache(maxsize=8)
def _probe(bwrap_path: str, python: str, extra: tuple[str, ...], root: bool) -> IsolationStatus:
    try:
        iso.seccomp.machine_arch()
        sec_ok, sec_reason = True, ""
    except iso.seccomp.SeccompUnsupported as exc:
        sec_ok, sec_reason = False, str(exc)
    ok, reason = _probe_bwrap(SandboxConfig(bwrap_path=bwrap_path, python=python, extra_read_paths=extra), root)
    return IsolationStatus(mode=BWRAP if ok else FALLBACK, bwrap=ok, bwrap_reason=reason, seccomp=sec_ok,
                           seccomp_reason=sec_reason, landlock_abi=iso.landlock_abi(), unprivileged_uid=root)


def _probe_bwrap(config: SandboxConfig, root: bool) -> tuple[bool, str]:
    path = shutil.which(config.bwrap_path)
    if path is None:
        return False, f"{config.bwrap_path!r} not found (install the bubblewrap package)"
    interp = iso.find_interpreter(config.python)
    info_r, info_w = os.pipe()
    sec_fd = _memfd("qmind-seccomp", iso.seccomp_program("bwrap") or b"")
    argv = iso.bwrap_args(path, interp, config, root=root, info_fd=info_w, seccomp_fd=sec_fd)
    argv += [interp.executable, *_PY_FLAGS, "-c", "import sys"]
    try:
        proc = subprocess.run(argv, pass_fds=(info_w, sec_fd), capture_output=True, timeout=30, check=False,
                              env=iso.sandbox_env("/"), start_new_session=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap did not run: {exc}"
    finally:
        for fd in (info_r, info_w, sec_fd):
            os.close(fd)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        hint = " (user namespaces disabled? see docs/sandbox.md)" if not root else ""
        return False, f"bubblewrap failed with exit code {proc.returncode}: {err[-1] if err else ''}{hint}"
    return True, "usable"


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _choose_mode(config: SandboxConfig) -> str:
    if config.isolation == FALLBACK:
        log.warning(_FALLBACK_WARNING, "isolation=rlimits was configured")
        return FALLBACK
    status = isolation_status(config)
    if status.bwrap:
        return BWRAP
    if config.isolation == BWRAP:
        raise SandboxError(f"isolation=bwrap was required but bubblewrap is unusable here: {status.bwrap_reason}")
    log.warning(_FALLBACK_WARNING, status.bwrap_reason)
    return FALLBACK


def _normalise_sizes(sizes: int | Sequence[int]) -> list[int]:
    items = [sizes] if isinstance(sizes, int) else list(sizes)
    if not items:
        raise ValueError("sizes must name at least one qubit count (the goal's own size first)")
    for n in items:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SIZE:
            raise ValueError(f"sizes must be integers between 1 and {MAX_SIZE}, got {n!r}")
    return list(dict.fromkeys(items))


def run_candidate(code: str, sizes: int | Sequence[int], *, config: SandboxConfig | None = None,
                  goal_size: int | None = None) -> SandboxResult:
    """Run ``code`` in the sandbox and call ``create_ansatz(n)`` for each of ``sizes`` in the order given.

    ``goal_size`` (default: the first of ``sizes``) is the size whose failure fails the run; a failure at any other
    size is recorded in ``size_errors``. The cascade shuffles the sizes so a program cannot tell the goal's call
    by its position.

    Returns a SandboxResult: ``ok`` with one QPY circuit per size that worked, or ``error``/``timeout``/``resource``
    with a message fit to feed back to the model. Raises SandboxError only when the sandbox itself cannot run.
    """
    config = config or SandboxConfig()
    sizes = _normalise_sizes(sizes)
    goal = sizes[0] if goal_size is None else goal_size
    if goal not in sizes:
        raise ValueError(f"goal_size {goal_size!r} is not one of the sizes {sizes}")
    if not isinstance(code, str):
        raise TypeError(f"code must be str, got {type(code).__name__}")
    try:
        source = code.encode("utf-8")
    except UnicodeEncodeError as exc:
        return SandboxResult(status=STATUS_ERROR, error=f"The code is not valid UTF-8 text: {exc.reason}")
    if len(source) > config.max_code_bytes:
        return SandboxResult(status=STATUS_ERROR, error=(
            f"The code is {len(source)} bytes long, over the limit of {config.max_code_bytes} bytes"))
    mode = _choose_mode(config)
    interp = iso.find_interpreter(config.python)
    with iso.claim_slot(config) as uid:
        if uid is not None:  # a worker killed mid-run may have left processes and a directory behind
            if sandbox_pids(Identity(uid=uid), full_scan=True):
                log.error("sandbox: processes of uid %s survived an earlier run; killing them", uid)
                kill_tree(None, Identity(uid=uid), pidns=None)
            iso.remove_stale_workdirs(uid)
        outcome = _execute(source, sizes, goal, config, mode, interp, uid)
    return interpret(outcome, sizes, goal, config, mode)


def _execute(source: bytes, sizes: list[int], goal: int, config: SandboxConfig, mode: str,
             interp: iso.Interpreter, uid: int | None) -> Outcome:
    root = uid is not None
    runner_cfg = _runner_config(sizes, goal, config, mode, interp, uid)
    workdir = iso.make_workdir(uid) if mode == FALLBACK else None
    ipc_uid = (uid if root else os.getuid()) if mode == FALLBACK else None
    ipc_before = set() if root or ipc_uid is None else ipc.objects(ipc_uid)  # a slot uid owns nothing of ours
    opened: list[int] = []
    try:
        code_fd = _memfd("qmind-candidate", source)
        opened.append(code_fd)
        result_r, result_w = os.pipe()
        opened += [result_r, result_w]
        runner_cfg.update(code_fd=code_fd, result_fd=result_w)
        pass_fds, info_r = [code_fd, result_w], None
        if mode == BWRAP:
            info_r, info_w = os.pipe()
            opened += [info_r, info_w]
            sec = iso.seccomp_program("bwrap")
            sec_fd = None if sec is None else _memfd("qmind-seccomp", sec)
            opened += [] if sec_fd is None else [sec_fd]
            runner_cfg.update(workdir=iso.WORKDIR_IN_BWRAP,
                              seccomp=[p.hex() for p in [iso.seccomp_program("no_exec")] if p])
            argv = iso.bwrap_args(_bwrap_path(config), interp, config, root=root, info_fd=info_w,
                                  seccomp_fd=sec_fd)
            pass_fds += [info_w] + ([] if sec_fd is None else [sec_fd])
            env = iso.sandbox_env(iso.WORKDIR_IN_BWRAP)
        else:
            runner_cfg.update(workdir=workdir, parent_pid=os.getpid(),
                              seccomp=[p.hex() for p in (iso.seccomp_program("fallback"),
                                                         iso.seccomp_program("no_exec")) if p])
            argv = []
            env = iso.sandbox_env(workdir)
        opened.append(cfg_fd := _memfd("qmind-config", json.dumps(runner_cfg).encode()))
        pass_fds.append(cfg_fd)
        argv += [interp.executable, *_PY_FLAGS, "-c", _runner_source(), str(cfg_fd)]

        def ident_for(proc: subprocess.Popen) -> Identity:
            if mode == BWRAP:
                return Identity(uid=uid)
            return Identity(uid=uid, pgid=proc.pid, own_uid=None if root else os.getuid())

        per_size = config.max_circuit_bytes + 64 * 1024
        opened = []  # from here on run_process owns (and closes) every descriptor
        return run_process(argv, env=env, pass_fds=tuple(pass_fds), result_fd=result_r, info_fd=info_r,
                           ident_for=ident_for, wall_seconds=config.wall_seconds,
                           max_output=config.max_output_bytes, max_result=per_size * len(sizes) + 64 * 1024,
                           memory_limit=config.memory_bytes + BASELINE_MEMORY, disk_dir=workdir,
                           disk_limit=config.max_disk_bytes + 64 * 1024, tmpfs="/tmp" if mode == BWRAP else None)
    finally:
        for fd in opened:
            os.close(fd)
        if workdir is not None:
            iso.remove_workdir(workdir)
        if ipc_uid is not None:  # the fallback shares the host's IPC namespace
            ipc.remove_new(ipc_uid, ipc_before)


def _runner_config(sizes: list[int], goal: int, config: SandboxConfig, mode: str, interp: iso.Interpreter,
                   uid: int | None) -> dict:
    """What ``runner.py`` is told (before the descriptors and the mode's own entries are added): sizes, import
    path, the uid to drop to, rlimits, Landlock's read-only paths and the circuit size cap."""
    root = uid is not None
    nproc = config.max_processes
    if mode == FALLBACK and not root:  # the candidate shares the worker's uid: count what it already runs
        nproc += _count_own_processes()
    return {
        "sizes": sizes, "goal": goal, "sys_path": _sys_path(interp, config), "drop": [uid, uid] if root else None,
        "limits": {"cpu": config.cpu_limit, "fsize": config.max_disk_bytes, "nofile": config.max_open_files,
                   "nproc": nproc, "memory": config.memory_bytes},
        "landlock": {"enabled": True, "devices": list(iso.DEVICES),
                     "read": iso.read_only_paths(interp, config) + list(iso.READ_FILES)
                     + (["/proc"] if mode == BWRAP else [])},
        "max_circuit_bytes": config.max_circuit_bytes, "qpy_version": _qpy_version(),
    }


def _sys_path(interp: iso.Interpreter, config: SandboxConfig) -> list[str]:
    """The interpreter's own import path, then the extra read-only directories."""
    extra = [os.path.realpath(p) for p in config.extra_read_paths if os.path.isdir(p)]
    return list(dict.fromkeys([*interp.sys_path, *extra]))


def _bwrap_path(config: SandboxConfig) -> str:
    path = shutil.which(config.bwrap_path)
    if path is None:
        raise SandboxError(f"bubblewrap ({config.bwrap_path!r}) is not installed")
    return path


def _count_own_processes() -> int:
    """Tasks (threads included: RLIMIT_NPROC counts them) of this uid right now."""
    me = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == me:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return count
