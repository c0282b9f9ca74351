"""The numpy gate-by-gate kernel of the statevector engine (the fallback when numba is not installed).

States are arrays of shape (B, 2**n), one row per parameter vector, viewed as (B, 2, ..., 2) so a gate on k qubits
touches 2**k strided *blocks* (qubit q is axis n - q: Qiskit's little-endian order). Gates apply block by block,
skipping zero matrix entries; diagonal gates act in place. The adjoint pass is the one described in
``statevector.py``; it costs about three forward passes plus one H psi.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .kernels import FixedKernel, RotationKernel
from .program import Program, Rotation


def half_angle_factors(phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos(phi/2), sin(phi/2) for a batch of angle vectors (B, num_angles)."""
    half = 0.5 * phis
    return np.cos(half), np.sin(half)


class BlockKernel:
    """Forward and adjoint passes of a ``Program`` with numpy block kernels."""

    name = "numpy"

    def __init__(self, program: Program, hamiltonian: sparse.csr_matrix):
        self.program, self.dim = program, 2**program.num_qubits
        self.hamiltonian = hamiltonian
        n = program.num_qubits
        self._ops = [RotationKernel(n, op) if isinstance(op, Rotation) else FixedKernel(n, op) for op in program.ops]

    def _forward(self, phis: np.ndarray) -> np.ndarray:
        psi = np.zeros((phis.shape[0], self.dim), dtype=complex)
        psi[:, 0] = 1.0
        other = np.empty_like(psi)
        cos, sin = (np.ascontiguousarray(f.T) for f in half_angle_factors(phis))
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

    def energies(self, phis: np.ndarray) -> np.ndarray:
        psi = self._forward(phis)
        return np.einsum("bi,bi->b", psi.conj(), self._apply_h(psi)).real

    def adjoint(self, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = phis.shape[0]
        psi = self._forward(phis)
        mu = self._apply_h(psi).conj()
        energy = np.einsum("bi,bi->b", mu, psi).real
        grads = np.zeros((rows, self.program.num_angles))
        o = np.empty_like(psi)
        cos, sin = (np.ascontiguousarray(f.T) for f in half_angle_factors(phis))
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
