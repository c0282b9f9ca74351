"""Compiled (numba) drivers of the statevector engine: one call walks a whole ``tape.Tape`` for a batch of states.

States are *split*: ``psi`` has shape (B, 2, L) float64, ``psi[b, 0]`` the real and ``psi[b, 1]`` the imaginary
parts of row b's 2**n amplitudes (L >= 2**n; the tail is padding and never read). Split planes make every
one-qubit rotation a vectorised stride-1 loop (``jit_rot.py``).

- Forward: |0> then every op in place, one pass over the state per gate (``jit_rot``, ``jit_fixed``).
- Hamiltonian: ``mu = conj(H psi)`` and ``E = Re <psi|H psi>`` in one CSR pass (real data when H is real: two
  real products, one per plane).
- Backward (adjoint differentiation, see ``statevector.py``): per rotation, in ONE pass over the amplitude pairs,
  the gradient ``Im <mu|P|psi>`` from the pair itself (no ``P psi`` copy), ``psi <- U^dag psi`` and
  ``mu <- U^T mu``; per fixed gate ``M^dag`` on psi and ``M^T`` on mu.

Every kernel is compiled once per machine and kept in an on-disk cache (``jit_cache.py``) that any process of the
same user reads (forked workers included). Importing this module
without numba raises ImportError; ``statevector.py`` then falls back to its numpy kernels.
"""

from __future__ import annotations

import numpy as np

from .jit_cache import kernel
from .jit_fixed import gate1, gate2_dense, gate2_diagonal, gate2_monomial, gate_k
from .jit_rot import rotate_1q, rotate_1q_back, rotate_pauli, rotate_pauli_back
from .tape import FIX1, FIX2_DENSE, FIX2_DIAG, FIX2_MONO, ROT_PAULI

jit = kernel()
jit_h = kernel(fastmath={"nnan", "ninf", "nsz", "contract"})
"""No NaN/inf (the state and H are finite): with real data the products with ``h.imag == 0`` fold away."""


@jit
def _fixed(re, im, dim, op, variant, ipool, cpool, tmp):
    """The fixed gate of tape row ``op``, ``variant`` 0 (M), 1 (M^dag) or 2 (M^T), in place on one state."""
    kind, coff = op[0], op[1]
    if kind == FIX1:
        gate1(re, im, dim, op[2], cpool, coff + 4 * variant)
    elif kind == FIX2_DIAG:
        gate2_diagonal(re, im, dim, op[2], op[3], cpool, coff + 4 * variant)
    elif kind == FIX2_MONO:
        gate2_monomial(re, im, dim, op[2], op[3], cpool, coff + 4 * variant, ipool, op[4] + 4 * variant)
    elif kind == FIX2_DENSE:
        gate2_dense(re, im, dim, op[2], op[3], cpool, coff + 16 * variant)
    else:
        gate_k(re, im, dim, op[2], op[3], coff, variant, ipool, cpool, tmp)


@jit
def forward(ops, ipool, cpool, cos, sin, psi, dim):
    """psi[b] <- U(phi_b)|0> for every row b (cos, sin: (B, num_angles) of the half angles)."""
    tmp = np.empty(16, dtype=np.complex128)
    for b in range(psi.shape[0]):
        re, im = psi[b, 0], psi[b, 1]
        re[:] = 0.0
        im[:] = 0.0
        re[0] = 1.0
        for n in range(ops.shape[0]):
            op = ops[n]
            kind = op[0]
            if kind >= FIX1:
                _fixed(re, im, dim, op, 0, ipool, cpool, tmp)
            elif kind == ROT_PAULI:
                rotate_pauli(re, im, dim, op[2], op[3], op[4], op[5], cos[b, op[1]], sin[b, op[1]])
            else:
                rotate_1q(re, im, dim, kind, op[2], cos[b, op[1]], sin[b, op[1]])


@jit_h
def hamiltonian(indptr, indices, data, psi, mu, energy, dim):
    """mu[b] <- conj(H psi[b]); energy[b] <- Re <psi[b]|H|psi[b]> (H as CSR arrays, data real or complex)."""
    for b in range(psi.shape[0]):
        re, im, mr, mi = psi[b, 0], psi[b, 1], mu[b, 0], mu[b, 1]
        e = 0.0
        for i in range(dim):
            ar = 0.0
            ai = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                j, h = indices[k], data[k]
                ar += h.real * re[j] - h.imag * im[j]
                ai += h.real * im[j] + h.imag * re[j]
            mr[i], mi[i] = ar, -ai
            e += re[i] * ar + im[i] * ai
        energy[b] = e


@jit
def backward(ops, ipool, cpool, cos, sin, psi, mu, grads, dim):
    """Walk the tape backwards from the final psi and mu = conj(H psi): grads[b, j] = dE/dphi_j."""
    tmp = np.empty(16, dtype=np.complex128)
    for b in range(psi.shape[0]):
        pr, pi, mr, mi = psi[b, 0], psi[b, 1], mu[b, 0], mu[b, 1]
        for n in range(ops.shape[0] - 1, -1, -1):
            op = ops[n]
            kind = op[0]
            if kind >= FIX1:
                _fixed(pr, pi, dim, op, 1, ipool, cpool, tmp)
                _fixed(mr, mi, dim, op, 2, ipool, cpool, tmp)
                continue
            j = op[1]
            if kind == ROT_PAULI:
                g = rotate_pauli_back(pr, pi, mr, mi, dim, op[2], op[3], op[4], op[5], cos[b, j], sin[b, j])
            else:
                g = rotate_1q_back(pr, pi, mr, mi, dim, kind, op[2], cos[b, j], sin[b, j])
            grads[b, j] = g


@jit
def adjoint(ops, ipool, cpool, cos, sin, indptr, indices, data, psi, mu, energy, grads, dim):
    """Energies and dE/dphi for every row: forward, H, backward in one call."""
    forward(ops, ipool, cpool, cos, sin, psi, dim)
    hamiltonian(indptr, indices, data, psi, mu, energy, dim)
    backward(ops, ipool, cpool, cos, sin, psi, mu, grads, dim)
