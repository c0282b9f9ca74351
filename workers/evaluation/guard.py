"""Run a trusted stage on a hostile circuit in a forked child under limits a native call cannot ignore.

Verification, the barren-plateau check and VQE run Qiskit, numpy and our simulators on a circuit the candidate
chose. Their cost must not depend on the candidate's cleverness, and no exception or native crash may take the
worker's task down. ``run_guarded(fn, *args, limits=...)`` forks the current process (numpy, Qiskit and the
compiled kernels are already imported, so a fork costs milliseconds), and in the child:

* ``RLIMIT_AS`` = the address space at fork + ``memory_bytes`` (a numpy allocation fails with MemoryError; a native
  one aborts the child, never the worker), ``RLIMIT_CORE`` = 0, ``RLIMIT_CPU`` just above the wall limit;
* ``PR_SET_PDEATHSIG`` = SIGKILL: a killed worker takes its guarded child with it;
* stdout/stderr go to /dev/null (a Rust panic or an abort prints pages); the result comes back over a pipe;
* ``QISKIT_IN_PARALLEL=TRUE``: Qiskit's Rust thread pool was started in the parent and has no threads in a forked
  child; a parallel call (``SparsePauliOp.to_matrix``) deadlocked there until this made Qiskit run serially.

The parent waits at most ``seconds`` (wall clock) and SIGKILLs the child past it. What comes back is unpickled
with an allow-list (our result dataclasses, numpy scalars and builtins only). Every way a child can end without a
result becomes a ``GuardLimit`` (time, memory, crash) or a ``StageFailed`` (an exception), each with a message.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import io
import os
import pickle
import resource
import select
import signal
import struct
import time
from collections.abc import Callable
from typing import Any

from .errors import EvaluationError
from .text import clean_text

GiB = 1 << 30
MAX_REPLY_BYTES = 64 << 20
_PR_SET_PDEATHSIG = 1


class StageFailed(EvaluationError):
    """A guarded stage raised: ``kind`` is the exception type's name, the message says what happened."""

    def __init__(self, message: str, kind: str = "", known: bool = False):
        super().__init__(message)
        self.kind = kind
        self.known = known
        """True when the stage raised an EvaluationError (a verdict about the circuit, not a bug of ours)."""


class GuardLimit(EvaluationError):
    """A guarded stage hit a limit: ``what`` is ``time``, ``memory`` or ``crash``."""

    def __init__(self, message: str, what: str, stage: str = ""):
        super().__init__(message)
        self.what = what
        self.stage = stage
        """The last stage the child reported before it was stopped."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Hard limits of one guarded call."""

    seconds: float
    """Wall-clock limit; the parent SIGKILLs the child past it."""
    memory_bytes: int
    """Address space the child may add to what it inherited."""
    label: str = "the evaluation"
    """What the stage is called in messages (``the barren-plateau check``)."""


# ------------------------------------------------------------------ child side


def _child(fn: Callable, args: tuple, write_fd: int, limits: Limits, parent: int) -> None:
    """Never returns."""
    status = 0
    try:
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(3)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):
            with contextlib.suppress(Exception):
                signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(Exception):
            signal.setitimer(signal.ITIMER_REAL, 0)
        # Qiskit's Rust thread pool (rayon) lives on in the parent only: a parallel call here would wait forever for
        # its workers. Qiskit runs serially when QISKIT_IN_PARALLEL is TRUE (read at each call).
        os.environ["QISKIT_IN_PARALLEL"] = "TRUE"
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        with contextlib.suppress(Exception):
            import faulthandler
            faulthandler.disable()
        _limit_resources(limits)
        progress = lambda stage: _send(write_fd, b"S", stage.encode()[:64])
        try:
            value = fn(*args, progress=progress)
            reply = ("ok", value)
        except MemoryError:
            reply = ("memory", "")
        except BaseException as exc:  # noqa: BLE001 - every failure of the stage becomes a message
            reply = ("error", type(exc).__name__, clean_text(exc, 4000), isinstance(exc, EvaluationError))
        try:
            blob = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            blob = pickle.dumps(("memory", ""))
        except Exception as exc:  # noqa: BLE001
            blob = pickle.dumps(("error", "PicklingError", clean_text(exc, 1000), False))
        _send(write_fd, b"R", blob)
    except MemoryError:
        with contextlib.suppress(BaseException):
            _send(write_fd, b"R", pickle.dumps(("memory", "")))
    except BaseException:  # noqa: BLE001
        status = 2
    finally:
        os._exit(status)


def _limit_resources(limits: Limits) -> None:
    with open("/proc/self/statm", "rb") as fh:
        vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm + limits.memory_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + limits.seconds) + 2
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    if cpu_hard == resource.RLIM_INFINITY or cpu < cpu_hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu if cpu_hard == resource.RLIM_INFINITY else cpu_hard))


def _send(fd: int, tag: bytes, payload: bytes) -> None:
    data = tag + struct.pack("!Q", len(payload)) + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# ------------------------------------------------------------------ parent side


class _Unpickler(pickle.Unpickler):
    """Only our result types, numpy scalars/arrays and plain builtins."""

    _ALLOWED_BUILTINS = frozenset({"tuple", "list", "dict", "set", "frozenset", "complex", "float", "int", "bool", "str",
                         "bytes", "slice", "range"})

    def find_class(self, module: str, name: str):
        if module == "builtins" and name in self._ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if module == "workers.evaluation.results" and name[:1].isupper():
            return super().find_class(module, name)
        if module.split(".")[0] == "numpy" and name in ("scalar", "dtype", "_reconstruct", "ndarray",
                                                          "_frombuffer", "float64", "int64", "bool_"):
            return super().find_class(module, name)
        if module in ("collections", "copyreg") and name in ("OrderedDict", "_reconstructor"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} from a guarded child")


def run_guarded(fn: Callable[..., Any], *args: Any, limits: Limits) -> Any:
    """``fn(*args, progress=callable)`` in a forked child under ``limits``; its return value (picklable).

    ``progress(stage)`` lets ``fn`` say which stage it is in (named in a limit's message). Raises ``GuardLimit`` or
    ``StageFailed``; never hangs past ``limits.seconds`` (plus the time to reap a killed child)."""
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_fd)
        _child(fn, args, write_fd, limits, parent)
    os.close(write_fd)
    start = time.monotonic()
    data, finished, killed = bytearray(), False, False
    try:
        while not finished:
            left = start + limits.seconds - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(read_fd, 1 << 20)
                finished = not chunk
                if len(data) + len(chunk) > MAX_REPLY_BYTES:
                    break
                data += chunk
    finally:
        os.close(read_fd)
        if not finished:
            killed = True
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    return _verdict(bytes(data), status, killed, time.monotonic() - start, limits)


def _frames(data: bytes) -> tuple[str, bytes | None]:
    stage, result, pos = "", None, 0
    while pos + 9 <= len(data):
        tag, size = data[pos:pos + 1], struct.unpack_from("!Q", data, pos + 1)[0]
        payload = data[pos + 9:pos + 9 + size]
        if len(payload) < size:
            break
        if tag == b"S":
            stage = payload.decode("ascii", "replace")
        elif tag == b"R":
            result = payload
        pos += 9 + size
    return stage, result


def _verdict(data: bytes, status: int, killed: bool, seconds: float, limits: Limits) -> Any:
    stage, blob = _frames(data)
    label = limits.label + (f" ({stage})" if stage else "")
    budget = f"{limits.memory_bytes / GiB:.2f} GiB"
    if blob is not None and not killed:
        try:
            reply = _Unpickler(io.BytesIO(blob)).load()
        except Exception as exc:
            raise StageFailed(f"{label} returned an unreadable result: {clean_text(exc, 300)}") from exc
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "memory":
            raise GuardLimit(f"resource: {label} needed more than its memory budget of {budget} and was stopped",
                             "memory", stage)
        raise StageFailed(f"{label} failed: {reply[1]}: {reply[2]}", kind=reply[1], known=bool(reply[3]))
    if killed:
        raise GuardLimit(f"resource: {label} did not finish within its time limit of {limits.seconds:g} s (wall "
                         f"clock) and was stopped", "time", stage)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig == signal.SIGXCPU:
            raise GuardLimit(f"resource: {label} used more CPU time than its limit of {limits.seconds:g} s and was "
                             f"stopped", "time", stage)
        raise GuardLimit(f"resource: {label} crashed ({name}) after {seconds:.1f} s, usually from running out of "
                         f"its memory budget of {budget}", "crash", stage)
    raise GuardLimit(f"resource: {label} ended without a result (exit status {os.WEXITSTATUS(status)})", "crash",
                     stage)


@dataclasses.dataclass(frozen=True)
class TrustedConfig:
    """Limits of the trusted stages run on a candidate's circuit (read from ``QMIND_TRUSTED_<FIELD>`` at the edge:
    ``workers/settings.py``)."""

    verify_seconds: float = 60.0
    """Wall-clock limit for verification, the liveness check and the fingerprint (all sizes)."""
    score_seconds: float = 1500.0
    """Wall-clock limit for the barren-plateau check plus VQE (VQE's own budget is 600 s)."""
    memory_bytes: int = 4 * GiB
    """Memory each guarded stage may add to the worker's (address space of the forked child)."""

    def __post_init__(self) -> None:
        if not (self.verify_seconds > 0 and self.score_seconds > 0):
            raise ValueError(f"trusted stage limits must be > 0 s, got verify_seconds={self.verify_seconds!r}, "
                             f"score_seconds={self.score_seconds!r}")
        if self.memory_bytes < 64 << 20:
            raise ValueError(f"QMIND_TRUSTED_MEMORY_BYTES must be at least 64 MiB, got {self.memory_bytes}")

    def verify_limits(self) -> Limits:
        return Limits(self.verify_seconds, self.memory_bytes, "verification")

    def score_limits(self) -> Limits:
        return Limits(self.score_seconds, self.memory_bytes, "scoring")
