"""The Aer engine: exact expectation values from ``qiskit_aer.primitives.EstimatorV2`` with parameter shifts.

The compiled program is rebuilt as a circuit in which every rotation occurrence j has its own Parameter phi_j.
For a batch of B parameter vectors theta, one Estimator call evaluates, through parameter broadcasting, the
(B, 1 + 2m) grid of angle vectors ``phi``, ``phi + pi/2 e_j`` and ``phi - pi/2 e_j`` (m rotation occurrences).
The exact shift rule of ``exp(-i phi/2 P)`` gives ``dE/dphi_j = [E(+) - E(-)] / 2``; the chain rule gives
``dE/dtheta = A^T dE/dphi``. ``default_precision = 0`` makes the Estimator exact: Aer saves each Pauli term's
expectation value from the statevector; no shots, no noise.
"""

from __future__ import annotations

import numpy as np
from qiskit.quantum_info import SparsePauliOp

from ..errors import EvaluationError
from .program import Program

MAX_ROWS_PER_CALL = 20_000
"""Parameter bindings per Estimator call; larger batches (the BP check) are split into several calls."""


class AerEngine:
    """Energies and parameter-shift gradients through one ``EstimatorV2.run`` per batch."""

    name = "aer"

    def __init__(self, program: Program, hamiltonian: SparsePauliOp, *, threads: int = 1,
                 max_rows: int = MAX_ROWS_PER_CALL):
        try:
            from qiskit_aer.primitives import EstimatorV2
        except ImportError as exc:  # pragma: no cover - qiskit-aer is a core dependency
            raise EvaluationError("the aer engine needs qiskit-aer (pip install qiskit-aer)") from exc
        if hamiltonian.num_qubits != program.num_qubits:
            raise EvaluationError(f"Hamiltonian has {hamiltonian.num_qubits} qubits, "
                                  f"circuit has {program.num_qubits}")
        self.program = program
        self.hamiltonian = hamiltonian
        self.circuit, _ = program.angle_circuit()
        self.max_rows = max_rows
        self.estimator = EstimatorV2(options={
            "default_precision": 0.0,
            "backend_options": {"method": "statevector", "max_parallel_threads": threads},
        })
        self.calls = 0
        """Estimator calls so far (one per batch of energies or gradients, more only for huge batches)."""
        self.executions = 0
        """Parameter bindings (circuit executions) simulated so far."""

    def _run(self, phis: np.ndarray) -> np.ndarray:
        """Exact energies for an array of angle vectors (..., m) -> (...)."""
        m = self.program.num_angles
        if m == 0:  # no rotation depends on a parameter: one binding-free execution
            flat_shape = phis.shape[:-1]
            value = self._call(np.zeros((1, 0)))[0]
            return np.full(flat_shape, value)
        flat = phis.reshape(-1, m)
        out = np.concatenate([self._call(flat[lo:lo + self.max_rows]) for lo in range(0, len(flat), self.max_rows)])
        return out.reshape(phis.shape[:-1])

    def _call(self, values: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.executions += max(1, values.shape[0])
        try:
            if values.shape[1] == 0:
                result = self.estimator.run([(self.circuit, self.hamiltonian)]).result()
                return np.atleast_1d(np.asarray(result[0].data.evs, dtype=float))
            result = self.estimator.run([(self.circuit, self.hamiltonian, values)]).result()
        except Exception as exc:
            raise EvaluationError(f"qiskit-aer EstimatorV2 failed: {exc}") from exc
        return np.asarray(result[0].data.evs, dtype=float).reshape(values.shape[0])

    def energies(self, thetas: np.ndarray) -> np.ndarray:
        """E(theta) for each row of ``thetas`` in one Estimator call."""
        return self._run(self.program.angles(thetas))

    def angle_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(E (B,), dE/dphi (B, m)) from centre and +-pi/2 shifts of every occurrence, in one call."""
        phis = self.program.angles(thetas)
        rows, m = phis.shape
        if m == 0:
            return self._run(phis), np.zeros((rows, 0))
        shifts = np.concatenate([np.zeros((1, m)), np.pi / 2 * np.eye(m), -np.pi / 2 * np.eye(m)])
        grid = phis[:, None, :] + shifts[None, :, :]  # (B, 1 + 2m, m)
        values = self._run(grid)
        return values[:, 0], (values[:, 1:m + 1] - values[:, m + 1:]) / 2

    def energies_and_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(E (B,), dE/dtheta (B, num_parameters))."""
        energy, grad_phi = self.angle_gradients(thetas)
        return energy, self.program.chain(grad_phi)
