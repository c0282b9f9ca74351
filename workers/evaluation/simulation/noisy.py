"""An energy estimated from shots under a device noise model, with a standard error.

The Hamiltonian's non-identity terms are split into qubit-wise commuting groups (``SparsePauliOp.group_commuting
(qubit_wise=True)``); each group is one circuit: the bound ansatz, a basis change per qubit (X: H, Y: S^dagger H,
written in the device's native ``rz``/``sx``), and a measurement of the goal's qubits. The shot budget is split
evenly over the groups (``shots // groups`` each; the remainder is not spent). Each shot gives one value of the
group's operator ``sum_j c_j prod_{i in P_j} (-1)^{b_i}``; the group's estimate is the mean over its shots and its variance the sample
variance of those values (ddof=1) divided by the shot count, so the covariance of terms measured on the same shots
is included. Groups are independent: the energy is the sum of the group means plus the identity coefficient, and
the error bar (one standard error, shot noise only) is the square root of the summed variances.

The simulation is qiskit-aer's, seeded, on the routed circuit reduced to the physical qubits it touches, with a
noise model built from the device snapshot's calibration for those qubits alone (gate errors, thermal relaxation
during gates, readout errors; idle-time relaxation is not modelled because the circuit is not scheduled).
Density matrices up to ``DENSITY_MATRIX_QUBITS`` qubits (several groups per job), statevector trajectories beyond
(one group per job, in slices of ``SHOT_SLICE`` shots). The wall-clock budget is checked between jobs: one job can
overrun it, and an estimate that runs out of time is not reported at all (``OutOfTime``), never partially.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from ..errors import EvaluationError

DENSITY_MATRIX_QUBITS = 10
"""Active qubits up to which the exact density-matrix method is used (its memory grows as 4^n)."""
SHOT_SLICE = 250
"""Shots per job with statevector trajectories (the time budget is checked between jobs)."""


class OutOfTime(EvaluationError):
    """The simulation ran past its wall-clock budget; no partial estimate is reported."""


@dataclasses.dataclass(frozen=True)
class ShotEstimate:
    """A shot-based energy estimate."""

    energy: float
    stderr: float
    """One standard error from the per-group sample variances (shot noise only)."""
    shots: int
    """Shots actually spent (sum over groups)."""
    groups: int
    """Qubit-wise commuting measurement groups (one circuit each)."""
    method: str
    """Aer simulation method."""


def measurement_groups(hamiltonian: SparsePauliOp) -> tuple[float, list[SparsePauliOp]]:
    """(identity coefficient, qubit-wise commuting groups of the other terms)."""
    op = hamiltonian.simplify(atol=0)
    identity = ~np.any(op.paulis.x | op.paulis.z, axis=1)
    constant = float(np.real(np.sum(op.coeffs[identity])))
    rest = op[~identity] if np.any(~identity) else None
    return constant, ([] if rest is None else rest.group_commuting(qubit_wise=True))


def _group_basis(group: SparsePauliOp) -> list[str]:
    """Per logical qubit: the letter the group measures there (I, X, Y or Z)."""
    basis = ["I"] * group.num_qubits
    for x_row, z_row in zip(group.paulis.x, group.paulis.z):
        for q in range(group.num_qubits):
            if x_row[q] or z_row[q]:
                basis[q] = "Y" if x_row[q] and z_row[q] else ("X" if x_row[q] else "Z")
    return basis


def measurement_circuit(state: QuantumCircuit, group: SparsePauliOp, qubits: list[int]) -> QuantumCircuit:
    """``state`` followed by the group's basis change and a measurement of ``qubits[i]`` (logical qubit i) into
    classical bit i. Gates are native to IBM devices: X basis = rz(pi/2) sx rz(pi/2), Y basis = sx rz(pi/2)."""
    circuit = QuantumCircuit(state.num_qubits, group.num_qubits)
    circuit.compose(state, qubits=range(state.num_qubits), inplace=True)
    for logical, letter in enumerate(_group_basis(group)):
        q = qubits[logical]
        if letter == "X":
            circuit.rz(np.pi / 2, q)
            circuit.sx(q)
            circuit.rz(np.pi / 2, q)
        elif letter == "Y":
            circuit.sx(q)
            circuit.rz(np.pi / 2, q)
        circuit.measure(q, logical)
    return circuit


def group_values(group: SparsePauliOp, counts: dict[str, int]) -> tuple[float, float, int]:
    """(mean, variance of the mean, shots) of the group's operator over measured bit strings (bit i = qubit i)."""
    n = group.num_qubits
    keys = list(counts)
    weights = np.array([counts[k] for k in keys], dtype=float)
    bits = np.array([[int(c) for c in k.replace(" ", "")[::-1][:n]] for k in keys], dtype=np.int8)
    signs = 1 - 2 * bits.astype(float)  # (u, n)
    support = group.paulis.x | group.paulis.z  # (m, n)
    parity = np.prod(np.where(support[None, :, :], signs[:, None, :], 1.0), axis=2)  # (u, m)
    values = parity @ np.real(group.coeffs)  # (u,)
    shots = int(weights.sum())
    mean = float(np.dot(weights, values) / shots)
    var = float(np.dot(weights, (values - mean) ** 2) / (shots - 1)) / shots if shots > 1 else float("inf")
    return mean, var, shots


def estimate_energy(state: QuantumCircuit, hamiltonian: SparsePauliOp, qubits: list[int], *, noise_model,
                    shots: int, seed: int, max_seconds: float, start: float | None = None) -> ShotEstimate:
    """Estimate <state|H|state> from ``shots`` shots; logical qubit i of H is ``qubits[i]`` of ``state``."""
    from qiskit_aer import AerSimulator

    start = time.perf_counter() if start is None else start
    constant, groups = measurement_groups(hamiltonian)
    if not groups:
        return ShotEstimate(energy=constant, stderr=0.0, shots=0, groups=0, method="none")
    if shots < 2 * len(groups):
        raise EvaluationError(f"a budget of {shots} shots is too small for {len(groups)} measurement groups "
                              f"(at least 2 shots per group are needed for an error bar)")
    per_group = shots // len(groups)
    method = "density_matrix" if state.num_qubits <= DENSITY_MATRIX_QUBITS else "statevector"
    sim = AerSimulator(method=method, noise_model=noise_model, max_parallel_threads=1)
    # density matrices: one simulation per group whatever the shots, so several groups per job; trajectories
    # cost per shot, so one group per job in slices of shots, the budget checked between them
    jobs = ([(lo, range(lo, min(lo + 16, len(groups))), per_group) for lo in range(0, len(groups), 16)]
            if method == "density_matrix" else
            [(i * 1000 + k, range(i, i + 1), min(SHOT_SLICE, per_group - done))
             for i in range(len(groups)) for k, done in enumerate(range(0, per_group, SHOT_SLICE))])
    counts: list[dict[str, int]] = [{} for _ in groups]
    for offset, part, n_shots in jobs:
        if time.perf_counter() - start > max_seconds:
            raise OutOfTime(f"the noisy simulation ran past its budget of {max_seconds:g} s before measurement "
                            f"group {part[0] + 1} of {len(groups)} was done")
        circuits = [measurement_circuit(state, groups[i], qubits) for i in part]
        try:
            result = sim.run(circuits, shots=n_shots, seed_simulator=seed + offset).result()
            for j, i in enumerate(part):
                for key, n in result.get_counts(j).items():
                    counts[i][key] = counts[i].get(key, 0) + n
        except Exception as exc:
            raise EvaluationError(f"qiskit-aer failed on the noisy simulation: {exc}") from exc
    energy, variance = constant, 0.0
    for group, group_counts in zip(groups, counts):
        mean, var, _ = group_values(group, group_counts)
        energy += mean
        variance += var
    return ShotEstimate(energy=energy, stderr=float(np.sqrt(variance)), shots=per_group * len(groups),
                        groups=len(groups), method=method)
