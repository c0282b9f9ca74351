"""What came back from a sandboxed run (``process.Outcome``: the result channel's frames, output, how it stopped)
turned into a ``SandboxResult`` whose every message says what was wrong and what was expected."""

from __future__ import annotations

import json
import logging
import signal
import struct

from ..errors import SandboxError
from ..results import STATUS_ERROR, STATUS_RESOURCE, STATUS_TIMEOUT, SandboxResult
from .config import SandboxConfig
from .process import Outcome

log = logging.getLogger("qmind.sandbox")
STATUS_OK = "ok"
BWRAP, FALLBACK = "bwrap", "rlimits"
"""The isolation modes (``SandboxResult.isolation``): bubblewrap, or the weaker fallback."""
_MESSAGE_LIMIT = 2000


def _frames(data: bytes) -> tuple[list[tuple[bytes, int, bytes]], bool]:
    frames, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 9:
            return frames, True
        tag, n, length = struct.unpack_from(">cII", data, pos)
        pos += 9
        if length > len(data) - pos:
            return frames, True
        frames.append((tag, n, data[pos:pos + length]))
        pos += length
    return frames, False


def _message(payload: bytes) -> tuple[str, str]:
    try:
        obj = json.loads(payload.decode("utf-8"))
        kind, message = obj["kind"], obj["message"]
        if kind not in ("error", "resource") or not isinstance(message, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "error", "The sandbox reported a failure in an unreadable form (was the result channel tampered with?)"
    return kind, _clip(message)


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + " [...]"


def interpret(out: Outcome, sizes: list[int], goal: int, config: SandboxConfig, mode: str) -> SandboxResult:
    frames, truncated = _frames(out.result)
    common = {"stdout": out.stdout.decode("utf-8", "replace"), "stderr": out.stderr.decode("utf-8", "replace"),
              "wall_seconds": round(out.wall_seconds, 4), "isolation": mode}
    if out.output_bytes > config.max_output_bytes:
        note = f"\n[output truncated: {out.output_bytes} bytes produced, limit {config.max_output_bytes}]"
        common["stderr"] += note
    if out.leftovers:
        log.error("sandbox: %d processes survived the kill sweep", out.leftovers)
    if not frames or frames[0][0] != b"S":
        tail = out.stderr.decode("utf-8", "replace").strip()[-1500:]
        if out.stop == "wall":
            raise SandboxError(f"the sandbox ({mode}) did not start within {config.wall_seconds:g} s: {tail}")
        raise SandboxError(f"the sandbox ({mode}) could not start (exit code {out.returncode}): {tail}")
    circuits: dict[int, bytes] = {}
    size_errors: dict[int, str] = {}
    fatal: tuple[str, str] | None = None
    done = False
    for tag, n, payload in frames[1:]:
        if tag == b"C" and n in sizes and n not in circuits and len(payload) <= config.max_circuit_bytes:
            circuits[n] = payload
        elif tag == b"F" and n in sizes and n != goal:
            size_errors[n] = _message(payload)[1]
        elif tag == b"E" and fatal is None:
            fatal = _message(payload)
        elif tag == b"D":
            done = True
        else:
            truncated = True
    others = [n for n in sizes if n != goal]
    if out.stop == "disk":  # the host directory overflowed: never ok, even if the circuits arrived
        return SandboxResult(status=STATUS_RESOURCE, error=_stopped(out, config, mode, truncated)[1], **common)
    if done and goal in circuits:
        for n in others:
            if n not in circuits and n not in size_errors:
                size_errors[n] = "create_ansatz did not return a circuit for this size"
        return SandboxResult(status=STATUS_OK, circuits_qpy=circuits, size_errors=size_errors, **common)
    if fatal is not None:
        status = STATUS_RESOURCE if fatal[0] == "resource" else STATUS_ERROR
        return SandboxResult(status=status, error=fatal[1], **common)
    status, message = _stopped(out, config, mode, truncated)
    if goal in circuits:  # the goal's circuit arrived; a later size ran into the limit
        for n in others:
            if n not in circuits and n not in size_errors:
                size_errors[n] = message
        return SandboxResult(status=STATUS_OK, circuits_qpy=circuits, size_errors=size_errors, **common)
    return SandboxResult(status=status, error=message, **common)


def _stopped(out: Outcome, config: SandboxConfig, mode: str, corrupted: bool) -> tuple[str, str]:
    """(status, message) for a run that ended without a verdict from the runner."""
    if out.stop == "wall":
        return STATUS_TIMEOUT, (f"create_ansatz did not finish within the {config.wall_seconds:g} s time limit "
                                "(wall clock); the run was stopped. Avoid unbounded loops and blocking calls.")
    if out.stop == "output":
        return STATUS_RESOURCE, (f"The code printed more than {config.max_output_bytes} bytes to stdout/stderr; "
                                 "the run was stopped. Do not print inside create_ansatz.")
    if out.stop == "memory":
        return STATUS_RESOURCE, (f"The code used too much memory ({out.stop_detail}; limit "
                                 f"{config.memory_bytes / 2**30:.2f} GiB); the run was stopped. Build the circuit "
                                 "without large arrays and do not start processes.")
    if out.stop == "disk":
        return STATUS_RESOURCE, (f"The code wrote too much to disk ({out.stop_detail}; limit "
                                 f"{config.max_disk_bytes} bytes and 20000 files); the run was stopped. Do not write files.")
    if out.stop == "result":
        return STATUS_RESOURCE, (f"The circuits were larger than {config.max_circuit_bytes} bytes each; "
                                 "the run was stopped.")
    rc = out.returncode if out.returncode is not None else 0
    sig = -rc if rc < 0 else (rc - 128 if mode == BWRAP and rc > 128 else 0)
    cpu = config.cpu_limit
    # the code can send itself SIGXCPU (or, under bwrap, exit with 128 + SIGXCPU): a CPU timeout only when the
    # watchdog saw a process of the tree near the limit
    if (sig == signal.SIGXCPU and out.max_cpu_seconds >= 0.5 * cpu) or (
            sig == signal.SIGKILL and out.max_cpu_seconds >= 0.8 * cpu):
        return STATUS_TIMEOUT, (f"create_ansatz used more than {cpu:g} s of CPU time; the run was stopped. "
                                "Avoid unbounded loops.")
    if corrupted:
        return STATUS_ERROR, ("The sandbox's result channel was corrupted (did the code write to or close "
                              "inherited file descriptors?); no circuit was returned.")
    if sig:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        how = f"killed by {name}" if rc < 0 else f"killed by {name} (or exited with code {rc})"
        return STATUS_ERROR, (f"The process was {how} before create_ansatz returned a circuit "
                              "(a crash, e.g. from ctypes or corrupted memory).")
    return STATUS_ERROR, (f"The process exited (exit code {rc}) before create_ansatz returned a circuit; do not "
                          "call sys.exit/os._exit or kill the process.")
