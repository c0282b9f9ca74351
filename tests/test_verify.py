"""Verification: every failure a candidate can build produces its own message; good circuits pass with stats."""

import io
import time

import numpy as np
import pytest
from qiskit import QuantumCircuit, qpy
from qiskit.circuit import Gate, Parameter, ParameterVector
from qiskit.circuit.library import CXGate, UnitaryGate

from tests.ansatz_library import ry_cz, tfim_hva
from workers.evaluation.goals import get_goal
from workers.evaluation.verify import verify_circuit

GOAL = get_goal("tfim-4")


def _qpy_round_trip(circuit: QuantumCircuit) -> QuantumCircuit:
    """What the sandbox hands over: the circuit serialised and loaded again."""
    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    buffer.seek(0)
    return qpy.load(buffer)[0]


def _errors(circuit, goal=GOAL) -> str:
    result = verify_circuit(circuit, goal)
    assert not result.ok
    return " | ".join(result.errors)


def test_a_good_circuit_passes_with_its_statistics():
    result = verify_circuit(ry_cz(4, 2), GOAL)
    assert result.ok and result.errors == ()
    assert result.num_qubits == 4
    assert result.num_parameters == 12
    assert result.gate_counts == {"cz": 6, "ry": 12}
    assert result.num_two_qubit_gates == 6
    assert result.depth == ry_cz(4, 2).depth() == 7


def test_a_wrong_width_names_both_counts():
    qc = QuantumCircuit(5)
    qc.ry(Parameter("t"), 0)
    assert "circuit has 5 qubits, expected 4" in _errors(qc)


def test_a_circuit_without_parameters_is_refused():
    qc = QuantumCircuit(4)
    qc.ry(0.3, 0)
    qc.cx(0, 1)
    assert "no Parameters" in _errors(qc)


def test_forbidden_gates_are_named_with_the_allowed_list():
    qc = QuantumCircuit(4)
    qc.u(Parameter("a"), 0, 0, 0)
    qc.ccx(0, 1, 2)
    qc.ccx(1, 2, 3)
    text = _errors(qc)
    assert "gates not allowed: ccx (2x), u (1x)" in text
    assert "allowed gates: rx, ry, rz, h, x, cx, cz, rzz" in text


def test_a_goal_that_allows_more_gates_accepts_them():
    goal = get_goal("tfim-4", allowed_gates="u,cp,crx,ry")
    qc = QuantumCircuit(4)
    a, b = Parameter("a"), Parameter("b")
    qc.u(a, b, 0.1, 0)
    qc.cp(2 * a, 0, 1)
    qc.crx(-b / 2, 1, 2)
    assert verify_circuit(qc, goal).ok


@pytest.mark.parametrize("angle", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numeric_angles_are_refused(angle):
    qc = QuantumCircuit(4)
    qc.ry(Parameter("t"), 0)
    qc.rx(angle, 1)
    text = _errors(qc)
    assert "rx on qubit(s) 1" in text and "must be finite" in text


def test_a_non_finite_coefficient_inside_an_expression_is_refused():
    t = Parameter("t")
    qc = QuantumCircuit(4)
    qc.ry(t * 1e308 * 1e308, 0)  # inf * t: qiskit accepts it, the scorer must not
    assert "must be finite" in _errors(qc)


def test_complex_and_nonlinear_angles_are_refused():
    t = Parameter("t")
    qc = QuantumCircuit(4)
    qc.ry(1j * t, 0)
    qc.rz(t.sin(), 1)
    qc.rx(t * t, 2)
    text = _errors(qc)
    assert "complex" in text
    assert "sin(t) is not a linear function" in text
    assert "t**2 is not a linear function" in text or "t*t is not a linear function" in text


def test_linear_expressions_and_shared_parameters_pass():
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(4)
    qc.ry(2 * a, 0)
    qc.ry(a + b, 1)
    qc.rz(-b / 2, 2)
    qc.rzz(a, 2, 3)
    result = verify_circuit(qc, GOAL)
    assert result.ok and result.num_parameters == 2


def test_a_too_deep_circuit_reports_depth_and_limit():
    goal = get_goal("tfim-4", max_depth=10)
    qc = QuantumCircuit(4)
    t = Parameter("t")
    for _ in range(11):
        qc.ry(t, 0)
    assert "circuit depth is 11, the limit is 10" in _errors(qc, goal)


def test_measurements_resets_and_classical_bits_are_refused():
    qc = QuantumCircuit(4)
    qc.ry(Parameter("t"), 0)
    qc.reset(1)
    qc.measure_all()
    text = _errors(qc)
    assert "classical bit" in text
    assert "non-unitary instructions are not allowed: measure, reset" in text


def test_initialize_is_refused_as_non_unitary():
    qc = QuantumCircuit(4)
    qc.initialize([1, 0], 0)
    qc.ry(Parameter("t"), 0)
    assert "non-unitary instructions are not allowed: initialize" in _errors(qc)


def test_barriers_are_accepted_and_not_counted_as_gates():
    qc = ry_cz(4, 1)
    qc.barrier()
    result = verify_circuit(qc, GOAL)
    assert result.ok and "barrier" not in result.gate_counts


def test_custom_composite_gates_and_impostors_are_refused():
    t = Parameter("t")
    block = QuantumCircuit(2)
    block.ry(t, 0)
    block.cx(0, 1)
    qc = QuantumCircuit(4)
    qc.append(block.to_gate(label="blk"), [0, 1])
    qc.append(CXGate(ctrl_state=0), [1, 2])  # named cx_o0: an open-controlled cx, not the allowed cx
    qc.append(UnitaryGate(np.eye(2)), [3])
    text = _errors(qc)
    assert "custom or composite instructions are not allowed" in text
    assert "cx_o0" in text and "unitary" in text


def test_a_custom_gate_named_like_an_allowed_gate_is_refused_even_after_qpy():
    t = Parameter("t")
    fake = Gate("rx", 1, [t])
    definition = QuantumCircuit(1)
    definition.ry(t, 0)
    definition.reset(0)  # a non-unitary body hidden behind an allowed name
    fake.definition = definition
    qc = QuantumCircuit(4)
    qc.append(fake, [0])
    text = _errors(_qpy_round_trip(qc))
    assert "named rx are not the standard Qiskit gates" in text


def test_control_flow_is_refused():
    qc = QuantumCircuit(4)
    t = Parameter("t")
    with qc.for_loop(range(2)):
        qc.ry(t, 0)
    assert "for_loop (control flow" in _errors(qc)


def test_parameters_only_in_the_global_phase_are_refused():
    qc = ry_cz(4, 1)
    qc.global_phase = Parameter("zz_phase")
    assert "zz_phase appear only in the global phase" in _errors(qc)


def test_a_nan_global_phase_is_refused():
    qc = ry_cz(4, 1)
    qc.global_phase = float("nan")
    assert "global phase" in _errors(qc)


def test_a_huge_circuit_is_refused_quickly():
    qc = QuantumCircuit(4)
    theta = ParameterVector("t", 1)
    for _ in range(50_000):
        qc.ry(theta[0], 0)
    start = time.perf_counter()
    text = _errors(qc)
    assert time.perf_counter() - start < 1.0
    assert "50000 instructions" in text


@pytest.mark.parametrize("value", ["not a circuit", None, 42, [QuantumCircuit(4)]])
def test_a_non_circuit_return_value_is_refused(value):
    assert "must return a qiskit QuantumCircuit" in _errors(value)


def test_verification_of_a_qpy_round_tripped_hva_passes():
    goal = get_goal("tfim-6")
    assert verify_circuit(_qpy_round_trip(tfim_hva(6)), goal).ok


def test_the_result_serialises_to_json():
    import json

    data = verify_circuit(ry_cz(4, 1), GOAL).to_dict()
    assert json.loads(json.dumps(data))["gate_counts"] == {"cz": 3, "ry": 8}


def test_an_angle_built_from_very_many_parameters_is_refused_quickly():
    theta = ParameterVector("t", 5000)
    qc = QuantumCircuit(4)
    qc.ry(sum(theta[1:], theta[0]), 0)
    start = time.perf_counter()
    text = _errors(qc)
    assert time.perf_counter() - start < 2.0
    assert "depends on 5000 Parameters" in text


def test_a_deeply_nested_angle_expression_is_refused_and_a_reused_one_is_checked_once():
    t = Parameter("t")
    deep = t
    for _ in range(200):
        deep = deep * 1.0001 + 0.5
    qc = QuantumCircuit(4)
    for _ in range(40):
        qc.ry(deep, 0)
    goal = get_goal("tfim-4", max_depth=100)
    start = time.perf_counter()
    text = _errors(qc, goal)
    assert time.perf_counter() - start < 1.0
    assert "characters long; at most 1000" in text
    assert text.count("characters long") <= 6  # five messages, then a count of the rest
