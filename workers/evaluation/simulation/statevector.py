"""The fast engine: a batched numpy statevector simulator with adjoint (reverse-mode) differentiation.

States are arrays of shape (B, 2**n), one row per parameter vector, viewed as (B, 2, ..., 2) so a gate on k qubits
touches 2**k strided *blocks* (qubit q is axis n - q: Qiskit's little-endian order). Gates apply block by block,
skipping zero matrix entries; diagonal gates act in place.

Gradients (Jones & Gacon 2020, "Efficient calculation of gradients in classical simulations of variational quantum
algorithms", arXiv:2009.02823): after the forward pass psi_N = U_N ... U_1 |0>, set lambda = H psi_N and walk the
program backwards. For a rotation U_j = exp(-i phi_j/2 P_j), ``dE/dphi_j = 2 Re <lambda_j| dU_j/dphi_j psi_{j-1}> =
Im <lambda_j| P_j |psi_j>``; then undo U_j on both states. We carry mu = conj(lambda) (evolved with U^T) so every
inner product is a plain batched dot without a conjugated copy. Cost: about three forward passes for all
gradients, independent of the number of parameters. The chain rule ``dE/dtheta = A^T dE/dphi`` is one matmul.
"""

from __future__ import annotations

import numpy as np
from qiskit.quantum_info import SparsePauliOp

from ..errors import EvaluationError
from .dense import DenseKernel
from .kernels import FixedKernel, RotationKernel
from .program import Program, Rotation

MAX_QUBITS = 22
CHUNK_ELEMENTS = 2**15
"""Amplitudes per chunk of the batch (rows x 2**n); about 512 KiB of complex128 keeps each pass in cache."""
DENSE_ALWAYS_QUBITS = 6
"""Up to this many qubits every batch uses ``dense.DenseKernel`` (fused segments, grouped rotations)."""
DENSE_MAX_QUBITS = 8
"""Up to this many qubits small batches (at most ``DENSE_MAX_ROWS`` rows) use it too; larger ones go gate by gate
(measured on one core: at 8 qubits a fused 256 x 256 matrix costs about as much as the gates it replaces once
16 rows share it)."""
DENSE_MAX_ROWS = 8


class StatevectorEngine:
    """Energies and exact gradients of ``<0|U(theta)^dag H U(theta)|0>`` for batches of parameter vectors."""

    name = "statevector"

    def __init__(self, program: Program, hamiltonian: SparsePauliOp, *, chunk_elements: int = CHUNK_ELEMENTS):
        n = program.num_qubits
        if n > MAX_QUBITS:
            raise EvaluationError(f"the statevector engine simulates at most {MAX_QUBITS} qubits, got {n}")
        if hamiltonian.num_qubits != n:
            raise EvaluationError(f"Hamiltonian has {hamiltonian.num_qubits} qubits, circuit has {n}")
        self.program, self.n = program, n
        self.dim = 2**n
        self.chunk_rows = max(1, chunk_elements // self.dim)
        self.hamiltonian = hamiltonian.to_matrix(sparse=True).tocsr()
        self._ops = [RotationKernel(n, op) if isinstance(op, Rotation) else FixedKernel(n, op) for op in program.ops]
        self._dense = None
        if n <= DENSE_MAX_QUBITS:
            self._dense = DenseKernel(program, hamiltonian)
        self.executions = 0
        """Parameter vectors simulated so far (forward passes; a gradient adds one backward pass each)."""

    # ---- public ----------------------------------------------------------------------------------------------
    def energies(self, thetas: np.ndarray) -> np.ndarray:
        """E(theta) for each row of ``thetas`` (B, num_parameters) -> (B,)."""
        phis = self.program.angles(thetas)
        if self._use_dense(phis.shape[0]):
            self.executions += phis.shape[0]
            return self._dense.energies(phis)
        out = np.empty(phis.shape[0])
        for lo in range(0, phis.shape[0], self.chunk_rows):
            psi = self._forward(phis[lo:lo + self.chunk_rows])
            hpsi = self._apply_h(psi)
            out[lo:lo + psi.shape[0]] = np.einsum("bi,bi->b", psi.conj(), hpsi).real
        return out

    def energies_and_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(E (B,), dE/dtheta (B, num_parameters)) for each row of ``thetas``."""
        phis = self.program.angles(thetas)
        rows = phis.shape[0]
        energy, grad_phi = np.empty(rows), np.empty((rows, self.program.num_angles))
        for lo in range(0, rows, self.chunk_rows):
            e, g = self._adjoint(phis[lo:lo + self.chunk_rows])
            energy[lo:lo + e.shape[0]], grad_phi[lo:lo + e.shape[0]] = e, g
        return energy, self.program.chain(grad_phi)

    def angle_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(E, dE/dphi) per rotation occurrence, before the chain rule (for cross-checks)."""
        phis = self.program.angles(thetas)
        parts = [self._adjoint(phis[lo:lo + self.chunk_rows]) for lo in range(0, phis.shape[0], self.chunk_rows)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    # ---- internals -------------------------------------------------------------------------------------------
    @staticmethod
    def _factors(phis: np.ndarray):
        half = np.ascontiguousarray(phis.T) / 2  # (num_angles, rows): one contiguous row per rotation
        return np.cos(half), np.sin(half)

    def _forward(self, phis: np.ndarray) -> np.ndarray:
        rows = phis.shape[0]
        self.executions += rows
        psi = np.zeros((rows, self.dim), dtype=complex)
        psi[:, 0] = 1.0
        other = np.empty_like(psi)
        cos, sin = self._factors(phis)
        for op in self._ops:
            if isinstance(op, RotationKernel):
                res = op.apply(psi, other, cos[op.index], sin[op.index])
            else:
                res = op.apply(psi, other, op.fwd)
            if res is other:
                psi, other = other, psi
        return psi

    def _apply_h(self, psi: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((self.hamiltonian @ psi.T).T)

    def _use_dense(self, rows: int) -> bool:
        """The dense kernel for few qubits, or for small batches on up to ``DENSE_MAX_QUBITS`` qubits."""
        if self._dense is None:
            return False
        return self.n <= DENSE_ALWAYS_QUBITS or rows <= DENSE_MAX_ROWS

    def _adjoint(self, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = phis.shape[0]
        if self._use_dense(rows):
            self.executions += rows
            return self._dense.adjoint(phis)
        psi = self._forward(phis)
        mu = self._apply_h(psi).conj()
        energy = np.einsum("bi,bi->b", mu, psi).real
        grads = np.zeros((rows, self.program.num_angles))
        o = np.empty_like(psi)
        cos, sin = self._factors(phis)
        for op in reversed(self._ops):
            if isinstance(op, RotationKernel):
                j = op.index
                c, s = cos[j][:, None], sin[j][:, None]
                op.pauli(psi, o)
                grads[:, j] = np.einsum("bi,bi->b", mu, o).imag
                # psi <- U^dag psi = c psi + i s P psi (P psi is already in o)
                psi *= c
                o *= 1j * s
                psi += o
                # mu <- U^T mu = c mu - i s sigma P mu
                op.pauli(mu, o)
                o *= (-1j * op.sigma) * s
                mu *= c
                mu += o
            else:
                if op.apply(psi, o, op.adj) is o:
                    psi, o = o, psi
                if op.apply(mu, o, op.trans) is o:
                    mu, o = o, mu
        return energy, grads
