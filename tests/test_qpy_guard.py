"""The hostile-QPY loader (``sandbox/qpy_guard.py``), the only way a candidate's circuit enters the trusted
process: accepted versions, truncation, garbage, allocation bombs, crashes in the trial child, metadata."""

from __future__ import annotations

import io
import random
import resource
import struct
import time

import pytest
from qiskit import QuantumCircuit, qpy
from qiskit.circuit import Parameter, ParameterVector
from qiskit.qpy import common as qpy_common

from workers.evaluation.errors import EvaluationError
from workers.evaluation.sandbox import load_circuit
from workers.evaluation.sandbox.qpy_guard import SAFE_QPY_VERSIONS, _trial_load, check_header


def dumped(*circuits: QuantumCircuit, **kwargs) -> bytes:
    buf = io.BytesIO()
    qpy.dump(list(circuits) if len(circuits) > 1 else circuits[0], buf, **kwargs)
    return buf.getvalue()


def parametric() -> QuantumCircuit:
    theta, vec = Parameter("theta"), ParameterVector("v", 3)
    qc = QuantumCircuit(3)
    qc.rx(2 * theta + vec[0], 0)
    qc.ry(vec[1] * vec[2] - 0.5, 1)
    qc.rzz(theta, 0, 2)
    return qc


def with_field(data: bytes, fmt: str, offset: int, value) -> bytes:
    patched = bytearray(data)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


def test_load_circuit_round_trips_parameter_expressions():
    qc = parametric()
    assert load_circuit(dumped(qc)) == qc


def test_the_accepted_qpy_versions_are_the_ones_without_text_expressions():
    assert SAFE_QPY_VERSIONS == frozenset(range(13, qpy_common.QPY_VERSION + 1))
    qc = parametric()
    for version in sorted(SAFE_QPY_VERSIONS):
        assert load_circuit(dumped(qc, version=version)) == qc


@pytest.mark.parametrize("version", [1, 5, 10, 11, 12, 99])
def test_other_qpy_versions_are_refused_before_parsing(version):
    data = with_field(dumped(parametric()), "!B", 6, version)
    with pytest.raises(EvaluationError, match=f"QPY version {version} is refused"):
        load_circuit(data)


def test_oversized_circuit_data_is_refused():
    data = dumped(parametric())
    with pytest.raises(EvaluationError, match=f"{len(data)} bytes, over the limit of 100 bytes"):
        load_circuit(data, max_bytes=100)


def test_truncated_circuit_data_is_refused_at_every_length():
    data = dumped(parametric())
    for length in range(0, len(data), 7):
        with pytest.raises(EvaluationError):
            load_circuit(data[:length])


@pytest.mark.parametrize("garbage", [b"", b"hello world, not a circuit", bytes(range(256)) * 4,
                                     b"QISKIT" + bytes(100), "QISKIT"])
def test_garbage_is_refused_with_a_clear_error(garbage):
    with pytest.raises(EvaluationError, match="truncated|not QPY|must be bytes|refused"):
        load_circuit(garbage)


def test_more_than_one_circuit_or_a_non_circuit_is_refused():
    with pytest.raises(EvaluationError, match="exactly one circuit, it holds 2"):
        load_circuit(dumped(parametric(), parametric()))
    with pytest.raises(EvaluationError, match="expected a circuit"):
        load_circuit(with_field(dumped(parametric()), "!c", 19, b"s"))


def test_a_header_claiming_a_hundred_million_qubits_is_refused_without_allocating():
    data = dumped(QuantumCircuit(3))
    offset = struct.unpack_from("!Q", data, 20)[0]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for field, name in ((5, "qubits"), (9, "classical bits")):
        with pytest.raises(EvaluationError, match=f"claims 100000000 {name}"):
            load_circuit(with_field(data, "!I", offset + field, 100_000_000))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024


def nested_definition_bomb(qubits: int = 100_000_000) -> bytes:
    """A circuit whose custom gate's nested definition claims ``qubits`` qubits (invisible to the header check)."""
    inner = QuantumCircuit(2, name="mygate")
    inner.cx(0, 1)
    inner.ry(Parameter("a"), 0)
    outer = QuantumCircuit(3)
    outer.append(inner.to_gate(), [0, 1])
    data = dumped(outer)
    fmt = "!H1cHIIQIQI"
    for pos in range(100, len(data) - struct.calcsize(fmt)):
        name_size, phase_type, _, width = struct.unpack_from(fmt, data, pos)[:4]
        if width == 2 and name_size == 6 and phase_type in (b"f", b"i", b"p", b"e"):
            return with_field(data, "!I", pos + 5, qubits)
    raise AssertionError("nested circuit header not found")


def test_a_nested_allocation_bomb_is_caught_by_the_trial_load_not_the_evaluator():
    data = nested_definition_bomb()
    check_header(data)  # the outer header is fine
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(EvaluationError, match="could not be loaded"):
        load_circuit(data)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024


@pytest.mark.parametrize("qubits,memory", [(10_000_000, 32 << 20), (10_000_000, 1 << 30)])
def test_a_loader_crash_in_the_trial_child_becomes_an_error_message_within_seconds(qubits, memory):
    # A nested definition claiming 10^7 qubits makes Qiskit's reader add them one by one; under the address-space
    # limit its allocator (mimalloc) retries a failing 1 GiB reservation on every allocation (~10^6 failed mmap
    # calls): this used to take 13-30 s before the abort (or load within 1 GiB after > 30 s), past the 20 s wall
    # limit on a loaded machine. The CPU budget (1 s + 1 s per MiB) now stops it by SIGXCPU if the abort is not first.
    start = time.monotonic()
    with pytest.raises(EvaluationError, match=r"the loader crashed \((SIGABRT|SIGXCPU)\)"):
        _trial_load(nested_definition_bomb(qubits), memory_bytes=memory, timeout=20)
    assert time.monotonic() - start < 12  # 2-3 s of CPU; wall time on a loaded 2-core machine


def test_random_corruption_never_escapes_as_anything_but_an_evaluation_error():
    rng = random.Random(1234)
    data = dumped(parametric())
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            circuit = load_circuit(bytes(mutated))
        except EvaluationError:
            outcomes["refused"] += 1
        else:
            assert isinstance(circuit, QuantumCircuit)
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 0


def test_loaded_circuits_carry_no_candidate_metadata():
    qc = parametric()
    qc.metadata = {"energy": -1e9, "note": "trust me"}
    assert load_circuit(dumped(qc)).metadata == {}


