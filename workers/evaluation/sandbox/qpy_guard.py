"""The trusted-side deserialiser for circuits that came out of the sandbox.

The bytes were written by a process the candidate controlled, so they are hostile:

* size cap before anything is parsed;
* header checks: the QISKIT magic, exactly one program, a circuit, and a QPY version from SAFE_QPY_VERSIONS only.
  Qiskit reads QPY < 13 in Python and rebuilds ParameterExpressions from text (a sympy ``srepr`` walked by an AST
  parser, or a symengine blob); from version 13 on expressions are a binary replay of operations, read by Qiskit's
  Rust reader with no string parsing at all. So 13 ... QPY_VERSION are accepted (the sandbox writes QPY_VERSION);
* the circuit header's counts are checked against the payload size and ``max_qubits``: a 500-byte payload that
  claims 10^8 qubits makes the Rust reader allocate gigabytes or abort the whole process (measured);
* a trial load in a forked child with an address-space limit, so that anything the header check cannot see (nested
  definitions, huge vectors) crashes or exhausts only that child. Only data the child loaded is loaded here.

Every failure is an EvaluationError whose message says what was wrong and what was expected.
"""

from __future__ import annotations

import faulthandler
import io
import math
import os
import re
import resource
import select
import signal
import struct
import time
from typing import NoReturn

from ..errors import EvaluationError

DEFAULT_MAX_CIRCUIT_BYTES = 4 << 20
DEFAULT_MAX_QUBITS = 1024
_FILE_HEADER = "!6sBBBBQc"  # preface, qpy_version, qiskit major/minor/patch, num_programs, symbolic_encoding
_FILE_HEADER_SIZE = struct.calcsize(_FILE_HEADER)
_CIRCUIT_HEADER = "!H1cHIIQIQI"  # name_size, phase type, phase size, qubits, clbits, metadata, regs, instrs, vars
_CIRCUIT_HEADER_SIZE = struct.calcsize(_CIRCUIT_HEADER)
_MIN_SAFE_VERSION = 13
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _max_qpy_version() -> int:
    from qiskit.qpy import common
    return int(common.QPY_VERSION)


SAFE_QPY_VERSIONS = frozenset(range(_MIN_SAFE_VERSION, _max_qpy_version() + 1))


def check_header(data: bytes, *, max_bytes: int = DEFAULT_MAX_CIRCUIT_BYTES,
                 max_qubits: int = DEFAULT_MAX_QUBITS) -> int:
    """Validate the QPY header and circuit header without deserialising; return the QPY version."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EvaluationError(f"circuit data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise EvaluationError(f"circuit data is {len(data)} bytes, over the limit of {max_bytes} bytes")
    if len(data) < _FILE_HEADER_SIZE + 1:
        raise EvaluationError(f"circuit data is truncated ({len(data)} bytes): a QPY file starts with a "
                              f"{_FILE_HEADER_SIZE + 1}-byte header")
    preface, version, _major, _minor, _patch, programs, encoding = struct.unpack_from(_FILE_HEADER, data)
    if preface != b"QISKIT":
        raise EvaluationError("circuit data is not QPY (it does not start with the QISKIT magic bytes)")
    if version not in SAFE_QPY_VERSIONS:
        raise EvaluationError(
            f"QPY version {version} is refused: only versions {min(SAFE_QPY_VERSIONS)}..{max(SAFE_QPY_VERSIONS)} "
            "are accepted (older versions encode parameter expressions as text that is parsed on load)")
    if programs != 1:
        raise EvaluationError(f"circuit data must hold exactly one circuit, it holds {programs}")
    if encoding not in (b"p", b"e"):
        raise EvaluationError(f"circuit data has an unknown symbolic encoding {encoding!r}")
    pos = _FILE_HEADER_SIZE
    if data[pos:pos + 1] != b"q":
        raise EvaluationError(f"circuit data holds a {data[pos:pos + 1]!r} program, expected a circuit (b'q')")
    pos += 1
    if version >= 16:  # a table of program offsets follows
        if len(data) < pos + 8:
            raise EvaluationError("circuit data is truncated inside the program table")
        (offset,) = struct.unpack_from("!Q", data, pos)
        if offset != pos + 8:
            raise EvaluationError(f"circuit data has a program offset of {offset}, expected {pos + 8}")
        pos = offset
    if len(data) < pos + _CIRCUIT_HEADER_SIZE:
        raise EvaluationError("circuit data is truncated inside the circuit header")
    (name_size, _ptype, phase_size, qubits, clbits, metadata, registers, instructions,
     variables) = struct.unpack_from(_CIRCUIT_HEADER, data, pos)
    rest = len(data) - pos - _CIRCUIT_HEADER_SIZE
    if qubits > max_qubits:
        raise EvaluationError(f"circuit data claims {qubits} qubits, more than the limit of {max_qubits}")
    if clbits > max_qubits:
        raise EvaluationError(f"circuit data claims {clbits} classical bits, more than the limit of {max_qubits}")
    for what, value in (("name", name_size), ("global phase", phase_size), ("metadata", metadata),
                        ("register count", registers), ("instruction count", instructions),
                        ("variable count", variables)):
        if value > rest:
            raise EvaluationError(f"circuit data is inconsistent: its {what} ({value}) exceeds the {rest} bytes "
                                  "that follow the header")
    return version


def load_circuit(data: bytes, *, max_bytes: int = DEFAULT_MAX_CIRCUIT_BYTES, max_qubits: int = DEFAULT_MAX_QUBITS,
                 memory_bytes: int = 1 << 30, timeout: float = 20.0):
    """Deserialise one QuantumCircuit from hostile QPY bytes (see the module docstring for the checks)."""
    from qiskit import QuantumCircuit, qpy

    check_header(data, max_bytes=max_bytes, max_qubits=max_qubits)
    data = bytes(data)
    _trial_load(data, memory_bytes=memory_bytes, timeout=timeout)
    try:
        programs = qpy.load(io.BytesIO(data))
    except Exception as exc:
        raise EvaluationError(f"circuit data could not be loaded: {_clean(exc)}") from exc
    if len(programs) != 1 or type(programs[0]) is not QuantumCircuit:
        raise EvaluationError(f"circuit data must hold exactly one QuantumCircuit, found {len(programs)} programs")
    circuit = programs[0]
    if circuit.num_qubits > max_qubits:
        raise EvaluationError(f"circuit has {circuit.num_qubits} qubits, more than the limit of {max_qubits}")
    circuit.metadata = {}  # candidate-written claims about itself; nothing downstream may read them
    return circuit


def _clean(exc: BaseException) -> str:
    text = _ANSI.sub("", f"{type(exc).__name__}: {exc}")
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and sum(ch.isalnum() for ch in ln) > len(ln) // 3]
    return " | ".join(lines)[:400]


def trial_cpu_seconds(size: int, timeout: float) -> int:
    """CPU seconds the trial load may use: 1 s + 1 s per MiB (started) (honest QPY loads at ~0.06 s per MiB), at most the
    wall timeout. A nested definition that claims millions of qubits makes the reader loop once per claimed qubit,
    and under the address-space limit Qiskit's allocator (mimalloc) retries a failing 1 GiB/200 MiB reservation on
    every allocation (~10^6 failed mmap calls, 10-30 s); this budget stops such a load after a few seconds."""
    return max(1, min(int(timeout) + 1, 1 + math.ceil(size / (1 << 20))))


def _trial_load(data: bytes, *, memory_bytes: int, timeout: float) -> None:
    """Load ``data`` in a forked child under an address-space and CPU limit; raise if that child fails."""
    import qiskit.qpy  # noqa: F401 - loaded before the fork: the child finds it in memory

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        _trial_child(data, read_end, write_end, memory_bytes=memory_bytes, timeout=timeout)
    os.close(write_end)
    reply, finished, status = _child_reply(pid, read_end, timeout)
    if not finished:
        raise EvaluationError(f"circuit data could not be loaded within {timeout:g} s")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            raise EvaluationError(f"circuit data could not be loaded: the loader crashed ({name}): it needed more "
                                  f"than {trial_cpu_seconds(len(data), timeout)} s of CPU time for {len(data)} "
                                  "bytes (a nested definition claiming far more qubits or gates than it holds)")
        raise EvaluationError(f"circuit data could not be loaded: the loader crashed ({name}); the data is "
                              f"malformed or needs more than {memory_bytes >> 20} MiB of memory")
    if reply.startswith(b"err:"):
        raise EvaluationError(reply[4:].decode("utf-8", "replace"))
    if reply != b"ok":
        raise EvaluationError("circuit data could not be loaded: the trial load gave no answer")


def _trial_child(data: bytes, read_end: int, write_end: int, *, memory_bytes: int, timeout: float) -> NoReturn:
    """The forked child of ``_trial_load``: limit itself, load, write ``ok`` or ``err:<message>``, exit. Nothing
    escapes it: every path ends in ``os._exit``."""
    message = b"ok"
    try:
        from qiskit import QuantumCircuit, qpy

        os.close(read_end)
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)  # a Rust abort prints a long backtrace; the verdict goes through the pipe
        faulthandler.disable()  # it writes to a saved copy of stderr
        with open("/proc/self/statm") as fh:
            vm = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = vm + memory_bytes if hard == resource.RLIM_INFINITY else min(hard, vm + memory_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        cpu = trial_cpu_seconds(len(data), timeout)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        programs = qpy.load(io.BytesIO(data))
        if len(programs) != 1 or type(programs[0]) is not QuantumCircuit:
            message = f"err:circuit data must hold exactly one QuantumCircuit, found {len(programs)}".encode()
    except BaseException as exc:  # noqa: BLE001
        try:
            message = ("err:circuit data could not be loaded: " + _clean(exc)).encode("utf-8", "replace")
        except BaseException:  # noqa: BLE001
            message = b"err:circuit data could not be loaded"
    finally:
        try:
            os.write(write_end, message[:2000])
        finally:
            os._exit(0)


def _child_reply(pid: int, read_end: int, timeout: float) -> tuple[bytes, bool, int]:
    """(what the child wrote, whether it finished writing within ``timeout``, its wait status); a child that did
    not finish is killed."""
    reply = b""
    deadline = time.monotonic() + timeout
    finished = False
    try:
        while not finished:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([read_end], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(read_end, 4096)
                reply += chunk[: 4096 - len(reply)]
                finished = not chunk
    finally:
        os.close(read_end)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    return reply, finished, status
