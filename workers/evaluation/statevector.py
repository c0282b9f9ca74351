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

from .errors import EvaluationError
from .program import FixedGate, Program, Rotation, pauli_matrix

MAX_QUBITS = 22
CHUNK_ELEMENTS = 2**15
"""Amplitudes per chunk of the batch (rows x 2**n); about 512 KiB of complex128 keeps each pass in cache."""


def _blocks(n: int, qubits: tuple[int, ...]) -> list[tuple]:
    """Index tuples selecting, for each local basis state i of ``qubits``, the block of the (B, 2, ..., 2) view."""
    out = []
    for i in range(2 ** len(qubits)):
        index = [slice(None)] * (n + 1)
        for t, q in enumerate(qubits):
            index[n - q] = (i >> t) & 1
        out.append(tuple(index))
    return out


def _sparse_rows(matrix: np.ndarray) -> list[list[tuple[int, complex]]]:
    return [[(j, complex(matrix[i, j])) for j in range(matrix.shape[1]) if abs(matrix[i, j]) > 1e-14]
            for i in range(matrix.shape[0])]


class _Fixed:
    def __init__(self, n: int, op: FixedGate):
        self.blocks = _blocks(n, op.qubits)
        m = op.matrix
        self.diagonal = bool(np.allclose(m, np.diag(np.diag(m)), atol=1e-14))
        if self.diagonal:
            d = np.diag(m)
            self.fwd = [(i, complex(v)) for i, v in enumerate(d) if abs(v - 1) > 1e-14]
            self.adj = [(i, complex(np.conj(v))) for i, v in self.fwd]
            self.trans = self.fwd
        else:
            self.fwd, self.adj, self.trans = _sparse_rows(m), _sparse_rows(m.conj().T), _sparse_rows(m.T)

    def apply(self, t, o, rows):
        """Apply (rows) to view ``t``; returns the view holding the result (``t`` when in place, else ``o``)."""
        b = self.blocks
        if self.diagonal:
            for i, v in rows:
                t[b[i]] *= v
            return t
        for i, row in enumerate(rows):
            target = o[b[i]]
            if not row:
                target[...] = 0
                continue
            j, v = row[0]
            np.multiply(t[b[j]], v, out=target)
            for j, v in row[1:]:
                target += v * t[b[j]]
        return o


class _Rot:
    def __init__(self, n: int, op: Rotation):
        self.blocks = _blocks(n, op.qubits)
        self.index = op.index
        self.k = len(op.qubits)
        p = pauli_matrix(op.paulis)
        self.perm = [int(np.flatnonzero(p[i])[0]) for i in range(p.shape[0])]
        self.phase = [complex(p[i, self.perm[i]]) for i in range(p.shape[0])]
        self.diagonal = all(i == j for i, j in enumerate(self.perm))
        self.sigma = -1.0 if op.paulis.count("Y") % 2 else 1.0  # P^T = sigma P

    def apply(self, t, o, c, s):
        """t <- (c - i s P) t, with c, s broadcastable per-row factors; returns the view holding the result."""
        b = self.blocks
        if self.diagonal:
            for i, ph in enumerate(self.phase):
                t[b[i]] *= c - (1j * ph) * s
            return t
        for i, j in enumerate(self.perm):
            target = o[b[i]]
            np.multiply(t[b[i]], c, out=target)
            target += ((-1j * self.phase[i]) * s) * t[b[j]]
        return o

    def pauli(self, t, o):
        """o <- P t."""
        b = self.blocks
        for i, j in enumerate(self.perm):
            np.multiply(t[b[j]], self.phase[i], out=o[b[i]])
        return o


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
        self._ops = [_Rot(n, op) if isinstance(op, Rotation) else _Fixed(n, op) for op in program.ops]
        self.executions = 0
        """Parameter vectors simulated so far (forward passes; a gradient adds one backward pass each)."""

    # ---- public ----------------------------------------------------------------------------------------------
    def energies(self, thetas: np.ndarray) -> np.ndarray:
        """E(theta) for each row of ``thetas`` (B, num_parameters) -> (B,)."""
        phis = self.program.angles(thetas)
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
    def _view(self, a: np.ndarray) -> np.ndarray:
        return a.reshape((a.shape[0],) + (2,) * self.n)

    @staticmethod
    def _factors(phis: np.ndarray):
        half = np.ascontiguousarray(phis.T) / 2  # (num_angles, rows): one contiguous row per rotation
        return np.cos(half), np.sin(half)

    def _cs(self, cos, sin, op: _Rot, rows: int):
        """Per-row factors of rotation ``op``, shaped to broadcast over its blocks (B, 2, ..., 2)."""
        shape = (rows,) + (1,) * (self.n - op.k)
        return cos[op.index].reshape(shape), sin[op.index].reshape(shape)

    def _forward(self, phis: np.ndarray) -> np.ndarray:
        rows = phis.shape[0]
        self.executions += rows
        psi = np.zeros((rows, self.dim), dtype=complex)
        psi[:, 0] = 1.0
        t, o = self._view(psi), self._view(np.empty_like(psi))
        cos, sin = self._factors(phis)
        for op in self._ops:
            if isinstance(op, _Rot):
                c, s = self._cs(cos, sin, op, rows)
                res = op.apply(t, o, c, s)
            else:
                res = op.apply(t, o, op.fwd)
            if res is o:
                t, o = o, t
        return t.reshape(rows, self.dim)

    def _apply_h(self, psi: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((self.hamiltonian @ psi.T).T)

    def _adjoint(self, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = phis.shape[0]
        psi = self._forward(phis)
        mu = self._apply_h(psi).conj()
        energy = np.einsum("bi,bi->b", mu, psi).real
        grads = np.zeros((rows, self.program.num_angles))
        t, m = self._view(psi), self._view(mu)
        o = self._view(np.empty_like(psi))
        cos, sin = self._factors(phis)
        flat = (rows, self.dim)
        for op in reversed(self._ops):
            if isinstance(op, _Rot):
                j = op.index
                c, s = cos[j][:, None], sin[j][:, None]
                t2, m2, o2 = t.reshape(flat), m.reshape(flat), o.reshape(flat)
                op.pauli(t, o)
                grads[:, j] = np.einsum("bi,bi->b", m2, o2).imag
                # psi <- U^dag psi = c psi + i s P psi (P psi is already in o)
                t2 *= c
                o2 *= 1j * s
                t2 += o2
                # mu <- U^T mu = c mu - i s sigma P mu
                op.pauli(m, o)
                o2 *= (-1j * op.sigma) * s
                m2 *= c
                m2 += o2
            else:
                res = op.apply(t, o, op.adj)
                if res is o:
                    t, o = o, t
                res = op.apply(m, o, op.trans)
                if res is o:
                    m, o = o, m
        return energy, grads
