"""Fingerprints recognise renamed copies of a circuit and tell different circuits apart."""

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector

from workers.evaluation.fingerprint import circuit_fingerprint, numerical_fingerprint, structural_fingerprint


def ladder(names: str, n: int = 4, swap_independent: bool = False) -> QuantumCircuit:
    theta = ParameterVector(names, 2 * n)
    qc = QuantumCircuit(n)
    qubits = list(range(n))[::-1] if swap_independent else range(n)
    for q in qubits:  # independent gates: their order in circuit.data must not matter
        qc.ry(theta[q], q)
    for q in range(n - 1):
        qc.cz(q, q + 1)
    for q in range(n):
        qc.rz(2 * theta[n + q], q)
    return qc


def test_renamed_parameters_give_the_same_fingerprints():
    a, b = ladder("theta"), ladder("zz_renamed")
    assert structural_fingerprint(a) == structural_fingerprint(b)
    assert numerical_fingerprint(a) == numerical_fingerprint(b)


def test_reordering_independent_gates_does_not_change_the_fingerprint():
    assert structural_fingerprint(ladder("t")) == structural_fingerprint(ladder("t", swap_independent=True))
    assert circuit_fingerprint(ladder("t")) == circuit_fingerprint(ladder("t", swap_independent=True))


def test_a_different_circuit_gets_a_different_fingerprint():
    a = ladder("t")
    b = ladder("t")
    b.cx(0, 3)
    c = ladder("t")
    c.data[-1] = c.data[-1].replace(params=[c.data[-1].operation.params[0] * 3])  # 6*theta instead of 2*theta
    fingerprints = {circuit_fingerprint(x) for x in (a, b, c)}
    assert len(fingerprints) == 3
    assert len({structural_fingerprint(x) for x in (a, b, c)}) == 3


def test_equivalent_gates_match_numerically_but_not_structurally():
    t = Parameter("t")
    a = QuantumCircuit(2)
    a.ry(t, 0)
    a.h(1)
    a.cz(0, 1)
    b = QuantumCircuit(2)
    b.ry(t, 0)
    b.h(1)
    b.h(1)
    b.cx(0, 1)
    b.h(1)
    assert numerical_fingerprint(a) == numerical_fingerprint(b)
    assert structural_fingerprint(a) != structural_fingerprint(b)


def test_global_phase_is_ignored():
    a = ladder("t")
    b = ladder("t")
    b.global_phase = np.pi / 3
    assert numerical_fingerprint(a) == numerical_fingerprint(b)


def test_swapping_which_parameter_drives_which_gate_is_the_same_ansatz():
    # ry(a) q0, ry(b) q1  vs  ry(b) q0, ry(a) q1: the same family of circuits, only names differ
    a, b = Parameter("a"), Parameter("b")
    one = QuantumCircuit(2)
    one.ry(a, 0)
    one.ry(b, 1)
    two = QuantumCircuit(2)
    two.ry(b, 0)
    two.ry(a, 1)
    assert circuit_fingerprint(one) == circuit_fingerprint(two)


def test_large_circuits_fall_back_to_the_structural_form():
    qc = ladder("t", n=16)
    assert circuit_fingerprint(qc).startswith("s:")
