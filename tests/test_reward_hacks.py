"""Reward hacks, tried as a policy trained on the reward would try them, through the real sandbox and cascade.

Each class of hack from issue 11 has several hostile examples; each must earn no more than the honest version.
"""

import dataclasses
import textwrap

import pytest

from workers.evaluation.cascade import EvaluationConfig, evaluate_code
from workers.evaluation.goals import get_goal

FAST = EvaluationConfig(bp_samples=60, restarts=2)
NO_SCORING = dataclasses.replace(FAST, run_bp=False, run_vqe=False)
HEADER = "from qiskit import QuantumCircuit\nfrom qiskit.circuit import Parameter, ParameterVector\n"


def _code(body: str) -> str:
    return HEADER + textwrap.dedent(body)


# ---- class 5: Parameters that do nothing ------------------------------------------------------------------------
DEAD_PARAMETERS = {
    "zero coefficient": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            t = Parameter('t')
            qc.ry(0 * t + 0.3, 0)
            for q in range(num_qubits - 1):
                qc.cx(q, q + 1)
            return qc
        """,
    "rz on |0>": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            for q in range(num_qubits):
                qc.rz(Parameter(f't{q}'), q)
            qc.h(0)
            return qc
        """,
    "rzz on a basis state": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.x(0)
            t = Parameter('t')
            for q in range(num_qubits - 1):
                qc.rzz(t, q, q + 1)
            return qc
        """,
    "rotation undone by its inverse": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.h(range(num_qubits))
            t = ParameterVector('t', num_qubits)
            for q in range(num_qubits):
                qc.ry(t[q], q)
                qc.ry(-t[q], q)
            return qc
        """,
    "zero coefficient beside a live Parameter": """
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            a, b = Parameter('a'), Parameter('b')
            qc.ry(a, 0)
            qc.ry(b - b + 0.1, 1)
            return qc
        """,
}


@pytest.mark.parametrize("label", sorted(DEAD_PARAMETERS))
def test_parameters_that_do_nothing_are_refused_with_a_message_that_says_so(label):
    goal = get_goal("tfim-4")
    result = evaluate_code(_code(DEAD_PARAMETERS[label]), goal, config=NO_SCORING)
    assert result.status == "invalid", (label, result.status, result.errors)
    text = " ".join(result.errors)
    assert "coefficient 0" in text or "no Parameter changes the energy" in text, text
    assert result.reward.seed_reward == 0.0


def test_a_parameter_in_a_refused_gate_is_not_called_a_global_phase_parameter():
    goal = get_goal("tfim-4")
    code = _code("""
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.ry(Parameter('a'), 0)
            qc.u(Parameter('b'), 0, 0, 1)
            return qc
        """)
    result = evaluate_code(code, goal, config=NO_SCORING)
    assert result.status == "invalid"
    assert any("gates not allowed: u" in e for e in result.errors)
    assert not any("global phase" in e for e in result.errors), result.errors


def test_a_live_circuit_with_a_parameter_that_helps_only_sometimes_is_accepted():
    goal = get_goal("tfim-4")
    code = _code("""
        def create_ansatz(num_qubits):
            qc = QuantumCircuit(num_qubits)
            qc.rz(Parameter('z'), 0)          # dead on its own
            qc.ry(Parameter('y'), 0)          # alive
            return qc
        """)
    result = evaluate_code(code, goal, config=NO_SCORING)
    assert result.status == "valid", result.errors
