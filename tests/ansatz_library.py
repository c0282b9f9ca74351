"""Known ansaetze used by the scoring tests and benchmarks/scoring.py (plain circuit builders, no scoring), and
``LAYERED``, a small layered ansatz as program source, the candidate the sandbox and queue tests and
benchmarks/sandbox_overhead.py run."""

from __future__ import annotations

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from workers.evaluation.barren import random_circuit

LAYERED = '''
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector


def create_ansatz(num_qubits):
    theta = ParameterVector("theta", 2 * num_qubits)
    qc = QuantumCircuit(num_qubits)
    for q in range(num_qubits):
        qc.ry(theta[q], q)
    for q in range(num_qubits - 1):
        qc.cx(q, q + 1)
    for q in range(num_qubits):
        qc.rz(2 * theta[num_qubits + q], q)
    return qc
'''
"""A valid candidate program: RY layer, CX chain, RZ layer (a parameter expression, 2 theta)."""


def tfim_hva(n: int, layers: int | None = None) -> QuantumCircuit:
    """Hamiltonian-variational ansatz for the periodic TFIM: |+>^n, then p layers of exp(-i b ZZ) on every ring
    bond and exp(-i g X) on every site, one (b, g) pair per layer (Wiersema et al. 2020). p = n/2 is exact."""
    p = layers if layers is not None else n // 2
    beta, gamma = ParameterVector("beta", p), ParameterVector("gamma", p)
    qc = QuantumCircuit(n)
    qc.h(range(n))
    for layer in range(p):
        for i in range(0, n, 2):
            qc.rzz(beta[layer], i, (i + 1) % n)
        for i in range(1, n, 2):
            qc.rzz(beta[layer], i, (i + 1) % n)
        for i in range(n):
            qc.rx(gamma[layer], i)
    return qc


def ry_cz(n: int, layers: int = 2) -> QuantumCircuit:
    """Shallow local hardware-efficient ansatz: layers of RY on every qubit + CZ on neighbours, final RY layer."""
    theta = ParameterVector("theta", n * (layers + 1))
    qc = QuantumCircuit(n)
    k = 0
    for _ in range(layers):
        for q in range(n):
            qc.ry(theta[k], q)
            k += 1
        for q in range(0, n - 1, 2):
            qc.cz(q, q + 1)
        for q in range(1, n - 1, 2):
            qc.cz(q, q + 1)
    for q in range(n):
        qc.ry(theta[k], q)
        k += 1
    return qc


def deep_random(n: int, layers: int | None = None, seed: int = 7) -> QuantumCircuit:
    """Unstructured random circuit (McClean et al. 2018): per layer a random-axis rotation on every qubit then a CZ
    brickwork; n^2 layers by default, enough to approximate a 2-design. The scorer's own reference circuit."""
    return random_circuit(n, layers if layers is not None else n * n, seed)


def hea_ry_rz(n: int, layers: int = 4) -> QuantumCircuit:
    """RY + RZ on every qubit, then a CZ chain, repeated: 2 n layers parameters (80 at n = 10, layers = 4)."""
    theta = ParameterVector("theta", 2 * n * layers)
    qc = QuantumCircuit(n)
    k = 0
    for _ in range(layers):
        for q in range(n):
            qc.ry(theta[k], q)
            qc.rz(theta[k + 1], q)
            k += 2
        for q in range(n - 1):
            qc.cz(q, q + 1)
    return qc


def heisenberg_hva(n: int, layers: int | None = None) -> QuantumCircuit:
    """HVA-like ansatz for the periodic Heisenberg ring: Neel singlets (X, H, CX on pairs), then layers of
    exp(-i t (XX + YY + ZZ)) on even bonds and on odd bonds, one parameter per bond class and layer."""
    p = layers if layers is not None else n // 2
    even, odd = ParameterVector("even", p), ParameterVector("odd", p)
    qc = QuantumCircuit(n)
    for i in range(0, n, 2):  # singlet (|01> - |10>)/sqrt 2 on (i, i+1)
        qc.x([i, i + 1])
        qc.h(i)
        qc.cx(i, i + 1)
    for layer in range(p):
        for start, params in ((1, odd), (0, even)):
            for i in range(start, n, 2):
                j = (i + 1) % n
                qc.rxx(params[layer], i, j)
                qc.ryy(params[layer], i, j)
                qc.rzz(params[layer], i, j)
    return qc


def h2_ansatz() -> QuantumCircuit:
    """H2 (STO-3G, Jordan-Wigner) ansatz: cos(t/2)|0101> + sin(t/2)|1010>, the Hartree-Fock determinant (qubits 0
    and 2 occupied) and its double excitation, the only two determinants in H2's ground state."""
    t = ParameterVector("t", 1)
    qc = QuantumCircuit(4)
    qc.ry(t[0], 1)
    qc.cx(1, 3)
    qc.cx(1, 2)
    qc.cx(1, 0)
    qc.x([0, 2])
    return qc


def h2_hardware_efficient(layers: int = 2) -> QuantumCircuit:
    """A generic hardware-efficient ansatz on H2's 4 qubits: X on the Hartree-Fock qubits, then layers of RY + CX."""
    theta = ParameterVector("theta", 4 * (layers + 1))
    qc = QuantumCircuit(4)
    qc.x([0, 2])
    k = 0
    for _ in range(layers):
        for q in range(4):
            qc.ry(theta[k], q)
            k += 1
        for q in range(3):
            qc.cx(q, q + 1)
    for q in range(4):
        qc.ry(theta[k], q)
        k += 1
    return qc
