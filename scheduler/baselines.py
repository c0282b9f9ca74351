"""Baseline ansätze, scored once per goal and shown beside the discoveries.

They are ordinary candidate programs (text defining ``create_ansatz``), so they go through exactly the same sandbox,
verification, barren-plateau check and VQE as a model's candidates:

- EfficientSU2 and RealAmplitudes (Qiskit's hardware-efficient circuits, linear entanglement) at 1, 2 and 3 reps;
- for lattice goals, a Hamiltonian-variational ansatz (HVA): the model's own terms as layers of rotations with one
  shared angle per term type and layer (Wecker, Hastings & Troyer 2015; Wiersema et al. 2020).
"""

from __future__ import annotations

import textwrap

from workers.evaluation.goals import Goal

_HARDWARE_EFFICIENT = '''\
from qiskit import QuantumCircuit
from qiskit.circuit.library import {func}


def create_ansatz(num_qubits: int) -> QuantumCircuit:
    """{title} with linear entanglement, {reps} rep(s)."""
    return {func}(num_qubits, reps={reps}, entanglement="linear")
'''

_HVA_TFIM = '''\
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector


def create_ansatz(num_qubits: int) -> QuantumCircuit:
    """Hamiltonian-variational ansatz for the transverse-field Ising chain: |+>^n, then p = n/2 layers of
    exp(-i gamma_l sum ZZ) on every bond and exp(-i beta_l sum X) on every site."""
    layers = max(1, min(num_qubits // 2, {max_layers}))  # capped so the depth stays within the goal's limit
    gamma = ParameterVector("gamma", layers)
    beta = ParameterVector("beta", layers)
    periodic = {periodic}
    qc = QuantumCircuit(num_qubits)
    qc.h(range(num_qubits))
    bonds = [(i, i + 1) for i in range(num_qubits - 1)]
    if periodic and num_qubits > 2:
        bonds.append((num_qubits - 1, 0))
    for layer in range(layers):
        for i, j in bonds:
            qc.rzz(2 * gamma[layer], i, j)
        for q in range(num_qubits):
            qc.rx(2 * beta[layer], q)
    return qc
'''

_HVA_XXZ = '''\
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector


def create_ansatz(num_qubits: int) -> QuantumCircuit:
    """Hamiltonian-variational ansatz for the {family} chain (Wiersema et al. 2020): singlets on the even bonds
    (0,1), (2,3), ..., then p layers of exp(-i theta (XX + YY){zz}) on the odd bonds and then on the even bonds,
    one angle per term type, bond group and layer. XX and YY rotations are RZZ conjugated by H and by RX(pi/2).
    (A Neel start would be useless here: its energy is identically zero by a sublattice symmetry.)"""
    from math import pi

    layers = max(1, min(num_qubits // 2, {max_layers}))  # capped so the depth stays within the goal's limit
    periodic = {periodic}
    qc = QuantumCircuit(num_qubits)
    for q in range(0, num_qubits - 1, 2):  # (|01> - |10>)/sqrt(2) on (q, q + 1)
        qc.x(q)
        qc.h(q)
        qc.cx(q, q + 1)
        qc.x(q + 1)
    bonds = [(i, i + 1) for i in range(num_qubits - 1)]
    if periodic and num_qubits > 2:
        bonds.append((num_qubits - 1, 0))
    groups = [[b for k, b in enumerate(bonds) if k % 2 == 1], [b for k, b in enumerate(bonds) if k % 2 == 0]]
    theta = ParameterVector("theta", layers * len(groups) * {terms})
    k = 0
    for layer in range(layers):
        for group in groups:
            xy, zz = theta[k], theta[k + {terms} - 1]
            k += {terms}
            for i, j in group:
                qc.h([i, j])
                qc.rzz(2 * xy, i, j)
                qc.h([i, j])
                qc.rx(pi / 2, [i, j])
                qc.rzz(2 * xy, i, j)
                qc.rx(-pi / 2, [i, j])
                if {with_zz}:
                    qc.rzz(2 * zz, i, j)
    return qc
'''


def hva_program(goal: Goal) -> str | None:
    """The HVA program for a spin chain goal (None for other goals: its layers follow the bonds of a chain)."""
    if not goal.is_lattice or goal.family not in ("tfim", "heisenberg", "xxz", "xy") or "rows" in goal.params:
        return None
    periodic = bool(goal.params.get("periodic", True))
    if goal.family == "tfim":
        # per layer: RZZ on a ring is 2 moments (3 for an odd ring), RX 1; plus the initial H
        per_layer = 4 if goal.num_qubits % 2 else 3
        return _HVA_TFIM.format(periodic=periodic, max_layers=max(1, (goal.max_depth - 4) // per_layer))
    with_zz = goal.family in ("heisenberg", "xxz") and goal.params.get("delta", 1.0) != 0
    # per bond: H, RZZ, H, RX, RZZ, RX (+ RZZ) = 6 (7) moments; two bond groups a layer, a third for an odd ring
    per_layer = (7 if with_zz else 6) * (3 if goal.num_qubits % 2 and periodic else 2)
    # plus 4 moments of singlet preparation
    return _HVA_XXZ.format(family=goal.family, zz=" + Delta ZZ" if with_zz else "", periodic=periodic,
                           terms=2 if with_zz else 1, with_zz=with_zz,
                           max_layers=max(1, (goal.max_depth - 4) // per_layer))


def baseline_programs(goal: Goal) -> list[tuple[str, str]]:
    """(name, program text) of every baseline for ``goal``; the ones whose gates the goal forbids are left out."""
    programs = []
    for func, title, gates in (("efficient_su2", "EfficientSU2", {"ry", "rz", "cx"}),
                               ("real_amplitudes", "RealAmplitudes", {"ry", "cx"})):
        if not gates <= set(goal.allowed_gates):
            continue
        for reps in (1, 2, 3):
            programs.append((f"{title}-r{reps}", _HARDWARE_EFFICIENT.format(func=func, title=title, reps=reps)))
    hva = hva_program(goal)
    hva_gates = {"h", "rzz", "rx"} | ({"x", "cx"} if goal.family != "tfim" else set())
    if hva and hva_gates <= set(goal.allowed_gates):
        programs.append(("HVA", textwrap.dedent(hva)))
    return programs
