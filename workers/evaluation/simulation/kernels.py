"""Gate kernels of the numpy engine: one fixed gate or one Pauli rotation applied to a batch of flat states.

Shared by ``statevector`` (gate by gate) and ``dense`` (fused small circuits).
"""

from __future__ import annotations

import numpy as np

from .program import FixedGate, Rotation, pauli_matrix


class Layout:
    """A compact view of a (B, 2**n) state around the qubits of one gate.

    The state is reshaped to (B, a, 2, b, 2, c, ...) with one axis of length 2 per gate qubit (most significant
    first) and the other qubits merged, so numpy iterates over at most 2k + 2 dimensions.
    """

    def __init__(self, n: int, qubits: tuple[int, ...]):
        dims: list[int] = []
        axis: dict[int, int] = {}
        above = n
        for q in sorted(set(qubits), reverse=True):
            dims.append(2 ** (above - q - 1))
            axis[q] = len(dims) + 1  # +1 for the batch axis
            dims.append(2)
            above = q
        dims.append(2**above)
        self.dims = tuple(dims)
        self.k = len(qubits)
        self.blocks = []
        for i in range(2**self.k):
            index = [slice(None)] * (len(dims) + 1)
            for t, q in enumerate(qubits):
                index[axis[q]] = (i >> t) & 1
            self.blocks.append(tuple(index))
        self.factor_tail = (1,) * (len(dims) - self.k)

    def view(self, a: np.ndarray) -> np.ndarray:
        return a.reshape((a.shape[0],) + self.dims)

    def factor(self, values: np.ndarray) -> np.ndarray:
        """Per-row values shaped to broadcast over one block."""
        return values.reshape((values.shape[0],) + self.factor_tail)


def sparse_rows(matrix: np.ndarray) -> list[list[tuple[int, complex]]]:
    return [[(j, complex(matrix[i, j])) for j in range(matrix.shape[1]) if abs(matrix[i, j]) > 1e-14]
            for i in range(matrix.shape[0])]


class FixedKernel:
    """A parameter-free gate: forward, adjoint and transpose applications."""

    def __init__(self, n: int, op: FixedGate):
        self.layout = Layout(n, op.qubits)
        m = op.matrix
        self.diagonal = bool(np.allclose(m, np.diag(np.diag(m)), atol=1e-14))
        if self.diagonal:
            d = np.diag(m)
            self.fwd = [(i, complex(v)) for i, v in enumerate(d) if abs(v - 1) > 1e-14]
            self.adj = [(i, complex(np.conj(v))) for i, v in self.fwd]
            self.trans = self.fwd
        else:
            self.fwd, self.adj, self.trans = sparse_rows(m), sparse_rows(m.conj().T), sparse_rows(m.T)

    def apply(self, psi: np.ndarray, out: np.ndarray, rows) -> np.ndarray:
        """Apply ``rows`` (fwd, adj or trans) to the flat state ``psi``; returns the array holding the result
        (``psi`` itself when in place, else ``out``)."""
        b, t = self.layout.blocks, self.layout.view(psi)
        if self.diagonal:
            for i, v in rows:
                t[b[i]] *= v
            return psi
        o = self.layout.view(out)
        for i, row in enumerate(rows):
            target = o[b[i]]
            if not row:
                target[...] = 0
                continue
            j, v = row[0]
            np.multiply(t[b[j]], v, out=target)
            for j, v in row[1:]:
                target += v * t[b[j]]
        return out


class RotationKernel:
    """exp(-i phi/2 P) as c - i s P with per-row c, s; also P alone (for gradients)."""

    def __init__(self, n: int, op: Rotation):
        self.layout = Layout(n, op.qubits)
        self.index = op.index
        p = pauli_matrix(op.paulis)
        self.perm = [int(np.flatnonzero(p[i])[0]) for i in range(p.shape[0])]
        self.phase = [complex(p[i, self.perm[i]]) for i in range(p.shape[0])]
        self.diagonal = all(i == j for i, j in enumerate(self.perm))
        self.sigma = -1.0 if op.paulis.count("Y") % 2 else 1.0  # P^T = sigma P

    def apply(self, psi: np.ndarray, out: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
        """(c - i s P) psi for per-row c, s of shape (B,); returns the array holding the result."""
        lay = self.layout
        b, t = lay.blocks, lay.view(psi)
        c, s = lay.factor(c), lay.factor(s)
        if self.diagonal:
            for i, ph in enumerate(self.phase):
                t[b[i]] *= c - (1j * ph) * s
            return psi
        o = lay.view(out)
        for i, j in enumerate(self.perm):
            target = o[b[i]]
            np.multiply(t[b[i]], c, out=target)
            target += ((-1j * self.phase[i]) * s) * t[b[j]]
        return out

    def pauli(self, psi: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out <- P psi."""
        lay = self.layout
        b, t, o = lay.blocks, lay.view(psi), lay.view(out)
        for i, j in enumerate(self.perm):
            np.multiply(t[b[j]], self.phase[i], out=o[b[i]])
        return out
