"""The compiled kernel of the statevector engine: a ``tape.Tape`` walked by the numba kernels of ``jit.py``.

Per call: the half-angle factors (one vectorised pass), then one compiled call for the whole batch. The
Hamiltonian is kept as CSR arrays without explicit zeros, with real data when every entry is real (molecules and
most lattices), which halves its memory traffic.
"""

from __future__ import annotations

import threading

import numpy as np
from scipy import sparse

from . import jit
from .block import half_angle_factors
from .program import Program
from .tape import build_tape


def csr_arrays(hamiltonian: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64, indices int64, data) of ``hamiltonian`` without stored zeros; data real when H is real."""
    h = hamiltonian.tocsr(copy=True)
    h.eliminate_zeros()
    data = h.data.real.copy() if not np.any(h.data.imag) else h.data.astype(complex)
    return h.indptr.astype(np.int64), h.indices.astype(np.int64), np.ascontiguousarray(data)


SKEW = 80
"""Floats (640 bytes) between the end of psi and the start of mu in their shared buffer."""
PAD = 24
"""Floats of padding after each plane (192 bytes)."""


class CompiledKernel:
    """Forward and adjoint passes of a ``Program`` through the compiled tape kernels."""

    name = "compiled"

    def __init__(self, program: Program, hamiltonian: sparse.csr_matrix):
        self.program, self.dim = program, 2**program.num_qubits
        self.tape = build_tape(program)
        self.csr = csr_arrays(hamiltonian)
        self._scratch = threading.local()
        """psi and mu of the last batch size, per thread (the results are always fresh arrays)."""

    def _buffers(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split psi and mu, (rows, 2, dim + PAD) each, in one allocation with mu shifted by ``SKEW`` floats.

        Planes that start on the same address modulo 4 KiB (page-aligned arrays, planes 2**n apart) make stores to
        one falsely alias loads from the other; the padding keeps every plane on a different offset."""
        scratch = self._scratch.__dict__
        if scratch.get("rows") != rows:  # reused while the batch size stays (a VQE's rounds): no page faults
            size = rows * 2 * (self.dim + PAD)
            flat = np.empty(2 * size + SKEW)
            scratch.update(rows=rows, psi=flat[:size].reshape(rows, 2, self.dim + PAD),
                           mu=flat[size + SKEW:].reshape(rows, 2, self.dim + PAD))
        return scratch["psi"], scratch["mu"], np.empty(rows)

    def energies(self, phis: np.ndarray) -> np.ndarray:
        t = self.tape
        cos, sin = half_angle_factors(phis)
        psi, mu, energy = self._buffers(phis.shape[0])
        jit.forward(t.ops, t.ipool, t.cpool, cos, sin, psi, self.dim)
        jit.hamiltonian(*self.csr, psi, mu, energy, self.dim)
        return energy

    def adjoint(self, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = self.tape
        cos, sin = half_angle_factors(phis)
        psi, mu, energy = self._buffers(phis.shape[0])
        grads = np.empty((phis.shape[0], self.program.num_angles))
        jit.adjoint(t.ops, t.ipool, t.cpool, cos, sin, *self.csr, psi, mu, energy, grads, self.dim)
        return energy, grads
