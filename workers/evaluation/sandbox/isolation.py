"""What isolation this host offers, and how a sandboxed run is set up: interpreter paths, bubblewrap arguments,
per-slot unprivileged uids (when the worker runs as root), the environment the candidate sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import glob
import json
import logging
import os
import pwd
import random
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator

from ..errors import SandboxError
from . import seccomp, tree
from .config import SandboxConfig

log = logging.getLogger("qmind.sandbox")

WORKDIR_IN_BWRAP = "/tmp/work"
WORKDIR_PREFIX = "qmind-sandbox-"
_SLOT_DIR_CANDIDATES = ("/run/qmind-sandbox", os.path.join(tempfile.gettempdir(), "qmind-sandbox-slots"))
READ_FILES = ("/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
_TOP_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")


@dataclasses.dataclass(frozen=True)
class Interpreter:
    """The Python the sandbox runs and the directories it needs, all resolved to real paths."""

    executable: str
    prefix: str
    sys_path: tuple[str, ...]
    """stdlib, lib-dynload and site-packages, in import order (never the project or the current directory)."""


@functools.lru_cache(maxsize=8)
def find_interpreter(python: str = "") -> Interpreter:
    """Resolve the interpreter: ``python`` (asked for its paths once) or the one running this process."""
    if not python:
        exe = os.path.realpath(sys.executable)
        prefix = os.path.realpath(sys.base_prefix)
        keep = {os.path.realpath(p) for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])}
        entries = [os.path.realpath(p) for p in sys.path if p]
        path = [p for p in entries if p.startswith(prefix + os.sep) or p in keep]
        path += [p for p in keep if p not in path]
    else:
        exe = shutil.which(python) or python
        probe = ("import json, sys, sysconfig; p = sysconfig.get_paths(); print(json.dumps([sys.base_prefix, "
                 "[x for x in sys.path if x], p['purelib'], p['platlib']]))")
        try:
            out = subprocess.run([exe, "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=True)
            base, entries, purelib, platlib = json.loads(out.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise SandboxError(f"cannot use {python!r} as the sandbox interpreter: {exc}") from exc
        exe, prefix = os.path.realpath(exe), os.path.realpath(base)
        keep = {os.path.realpath(purelib), os.path.realpath(platlib)}
        entries = [os.path.realpath(p) for p in entries]
        path = [p for p in entries if p.startswith(prefix + os.sep) or p in keep]
        path += [p for p in keep if p not in path]
    path = [p for p in dict.fromkeys(path) if os.path.exists(p)]
    if not os.access(exe, os.X_OK):
        raise SandboxError(f"sandbox interpreter {exe} is not executable")
    return Interpreter(executable=exe, prefix=prefix, sys_path=tuple(path))


def read_only_paths(interp: Interpreter, config: SandboxConfig) -> list[str]:
    """Directories the candidate may read (and bwrap binds read-only): /usr and friends, the interpreter prefix,
    site-packages, extra paths. Paths inside another listed path are dropped."""
    wanted = [p for p in _TOP_DIRS if os.path.isdir(p) and not os.path.islink(p)]
    wanted += [interp.prefix, *interp.sys_path, *(os.path.realpath(p) for p in config.extra_read_paths)]
    out: list[str] = []
    for p in sorted(dict.fromkeys(p for p in wanted if os.path.isdir(p)), key=len):
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def sandbox_env(workdir: str) -> dict[str, str]:
    """The whole environment of the candidate: no secrets, one thread per math library."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "MPLCONFIGDIR": os.path.join(workdir, ".matplotlib"), "PYTHONDONTWRITEBYTECODE": "1",
           "QISKIT_PARALLEL": "FALSE", "QISKIT_NUM_PROCS": "1"}
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                 "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS"):
        env[name] = "1"
    return env


def bwrap_args(bwrap: str, interp: Interpreter, config: SandboxConfig, *, root: bool, info_fd: int,
               seccomp_fd: int | None) -> list[str]:
    """bubblewrap's command line up to (not including) the interpreter command."""
    args = [bwrap]
    if root:  # privileged bwrap, no user namespace: the runner itself drops to the slot uid (kernel-enforced NPROC)
        args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        args += ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    args += ["--die-with-parent", "--new-session", "--hostname", "qmind-sandbox",
             "--info-fd", str(info_fd)]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    args += ["--perms", "1777", "--size", str(config.max_disk_bytes), "--tmpfs", "/tmp"]
    for top in _TOP_DIRS:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
    for path in read_only_paths(interp, config):
        args += ["--ro-bind", path, path]
    for path in READ_FILES:
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--clearenv"]
    for key, value in sandbox_env(WORKDIR_IN_BWRAP).items():
        args += ["--setenv", key, value]
    return args + ["--chdir", "/"]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 = unavailable)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return max(int(libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))), 0)
    except (OSError, AttributeError):
        return 0


def is_root() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def claim_slot(config: SandboxConfig) -> Iterator[int | None]:
    """Yield an unprivileged uid no other sandbox on this host uses right now (root only; else None).

    Slots are flock()ed files in a root-only directory, so concurrent workers never share a uid: RLIMIT_NPROC then
    counts exactly this sandbox's processes, and every process of that uid can be killed afterwards.
    """
    if not is_root():
        yield None
        return
    directory = _slot_dir()
    order = list(range(config.uid_slots))
    random.shuffle(order)
    deadline = time.monotonic() + max(config.wall_seconds, 10.0)
    while True:
        for slot in order:
            uid = config.uid_base + slot
            fd = os.open(os.path.join(directory, f"uid-{uid}"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue
                raise
            if _uid_processes(uid):  # a former run's orphans are still there (e.g. zombies PID 1 never reaps)
                os.close(fd)
                log.warning("sandbox uid %d still owns processes (zombies of an earlier run that nobody reaped?); "
                            "skipping that slot", uid)
                continue
            try:
                _check_unused(uid)
                yield uid
            finally:
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise SandboxError(f"all {config.uid_slots} sandbox uid slots are busy or still own processes of "
                               f"earlier runs; raise QMIND_SANDBOX_UID_SLOTS, or run the worker under an init "
                               f"that reaps orphans (docker --init, tini)")
        time.sleep(0.05)


def _uid_processes(uid: int) -> int:
    """Processes of real uid ``uid`` on the host, zombies included: they still count against RLIMIT_NPROC, so a
    slot whose uid owns any would give its next candidate a smaller process budget than configured."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"Uid:"):
                        count += int(line.split()[1]) == uid
                        break
        except OSError:
            continue
    return count


def _check_unused(uid: int) -> None:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return
    raise SandboxError(f"sandbox uid {uid} belongs to the account {name!r}; set QMIND_SANDBOX_UID_BASE to a free range")


def _slot_dir() -> str:
    for directory in _SLOT_DIR_CANDIDATES:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            st = os.lstat(directory)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077:
            return directory
    raise SandboxError(f"no private directory for sandbox slot locks (tried {', '.join(_SLOT_DIR_CANDIDATES)})")


def remove_stale_workdirs(uid: int) -> None:
    """Delete fallback directories a killed worker left behind for this (claimed, so idle) slot uid."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), WORKDIR_PREFIX + "*")):
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == uid:
                log.warning("sandbox: removing %s, left behind by an earlier run of uid %s", path, uid)
                remove_workdir(path)


def make_workdir(uid: int | None) -> str:
    """A private host directory for the fallback (0700, owned by the sandbox uid)."""
    path = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
    if uid is not None:
        os.chown(path, uid, uid)
    return path


def remove_workdir(path: str) -> None:
    """Delete the fallback's directory: iterative and fd-relative (``tree.remove_tree``), so any depth, names past
    PATH_MAX and directories the candidate made unreadable are removed, and a planted symlink is never followed."""
    if not tree.remove_tree(path):
        log.error("sandbox: could not remove %s", path)


def seccomp_program(mode: str) -> bytes | None:
    """The assembled filter for this machine, or None where no syscall table exists (logged)."""
    try:
        return seccomp.build_filter(mode)
    except seccomp.SeccompUnsupported as exc:
        log.warning("sandbox: %s; running WITHOUT a seccomp filter", exc)
        return None
