"""Compiled (numba) kernels of the statevector engine: one call walks a whole ``tape.Tape`` for a batch of states.

- Forward: |0> then every op in place, one pass over the state per gate. One-qubit rotations touch amplitude pairs
  (RY as a real 2 x 2 mix, RZ as two phases); a rotation about any Pauli string pairs ``i`` with ``i ^ x``; fixed
  gates load their 2^k amplitudes and write only the rows that differ from the identity.
- Hamiltonian: ``mu = conj(H psi)`` and ``E = Re <psi|H psi>`` in one CSR pass (real data when H is real).
- Backward (adjoint differentiation, see ``statevector.py``): per rotation, in ONE pass over the amplitude pairs,
  the gradient ``Im <mu|P|psi>`` from the pair itself (no ``P psi`` copy), ``psi <- U^dag psi`` and
  ``mu <- U^T mu``; per fixed gate ``M^dag`` on psi and ``M^T`` on mu.

Every kernel is compiled once per machine and kept in numba's on-disk cache (``cache=True``): beside this file in
``__pycache__`` when that is writable, else under ``NUMBA_CACHE_DIR`` or ``~/.cache/numba``. Importing this module
without numba raises ImportError; ``statevector.py`` then falls back to its numpy kernels.
"""

from __future__ import annotations

import numba
import numpy as np

from .jit_fixed import gate1, gate2_dense, gate2_diagonal, gate2_monomial, gate_k
from .tape import FIX1, FIX2_DENSE, FIX2_DIAG, FIX2_MONO, ROT_PAULI, ROT_X, ROT_Y

jit = numba.njit(cache=True, nogil=True, boundscheck=False)
jit_sum = numba.njit(cache=True, nogil=True, boundscheck=False, fastmath={"reassoc", "nsz"})
"""For loops that also sum a gradient: reassociation lets the sum vectorise (rounding changes at ~1e-16)."""
_PHASES = np.array([1.0, 1j, -1.0, -1j])


@jit
def _parity(v):
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    v ^= v >> 2
    v ^= v >> 1
    return v & 1


@jit
def _fixed(psi, op, variant, ipool, cpool, tmp):
    """The fixed gate of tape row ``op``, ``variant`` 0 (M), 1 (M^dag) or 2 (M^T), in place on one state."""
    kind, coff = op[0], op[1]
    if kind == FIX1:
        gate1(psi, op[2], cpool, coff + 4 * variant)
    elif kind == FIX2_DIAG:
        gate2_diagonal(psi, op[2], op[3], cpool, coff + 4 * variant)
    elif kind == FIX2_MONO:
        gate2_monomial(psi, op[2], op[3], cpool, coff + 4 * variant, ipool, op[4] + 4 * variant)
    elif kind == FIX2_DENSE:
        gate2_dense(psi, op[2], op[3], cpool, coff + 16 * variant)
    else:
        gate_k(psi, op[2], op[3], coff, variant, ipool, cpool, tmp)


@jit
def _rotate(psi, kind, a, z, ny, hb, c, s):
    """exp(-i phi/2 P) psi in place, c = cos(phi/2), s = sin(phi/2)."""
    dim = psi.shape[0]
    if kind == ROT_PAULI:
        if hb < 0:
            for i in range(dim):
                psi[i] *= complex(c, -s) if _parity(i & z) == 0 else complex(c, s)
            return
        ph = _PHASES[ny]
        bit = 1 << hb
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                k = i ^ a
                p0, p1 = psi[i], psi[k]
                f0 = ph if _parity(k & z) == 0 else -ph
                f1 = ph if _parity(i & z) == 0 else -ph
                psi[i] = c * p0 - 1j * s * f0 * p1
                psi[k] = c * p1 - 1j * s * f1 * p0
        return
    bit = 1 << a
    dim = psi.shape[0]
    if kind == ROT_X:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                p0, p1 = psi[i], psi[i + bit]
                psi[i] = complex(c * p0.real + s * p1.imag, c * p0.imag - s * p1.real)
                psi[i + bit] = complex(c * p1.real + s * p0.imag, c * p1.imag - s * p0.real)
    elif kind == ROT_Y:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                p0, p1 = psi[i], psi[i + bit]
                psi[i] = c * p0 - s * p1
                psi[i + bit] = s * p0 + c * p1
    else:
        e0, e1 = complex(c, -s), complex(c, s)
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                psi[i] *= e0
            for i in range(hi + bit, hi + 2 * bit):
                psi[i] *= e1


@jit
def forward(ops, ipool, cpool, cos, sin, psi):
    """psi[b] <- U(phi_b)|0> for every row b (cos, sin: (B, num_angles) of the half angles)."""
    tmp = np.empty(16, dtype=np.complex128)
    for b in range(psi.shape[0]):
        row = psi[b]
        row[:] = 0
        row[0] = 1
        for n in range(ops.shape[0]):
            kind = ops[n, 0]
            if kind >= FIX1:
                _fixed(row, ops[n], 0, ipool, cpool, tmp)
            else:
                j = ops[n, 1]
                _rotate(row, kind, ops[n, 2], ops[n, 3], ops[n, 4], ops[n, 5], cos[b, j], sin[b, j])


@jit
def hamiltonian(indptr, indices, data, psi, mu, energy):
    """mu[b] <- conj(H psi[b]); energy[b] <- Re <psi[b]|H|psi[b]> (H as CSR arrays)."""
    for b in range(psi.shape[0]):
        row, out = psi[b], mu[b]
        e = 0.0
        for i in range(row.shape[0]):
            acc = 0j
            for k in range(indptr[i], indptr[i + 1]):
                acc += data[k] * row[indices[k]]
            out[i] = acc.conjugate()
            e += row[i].real * acc.real + row[i].imag * acc.imag
        energy[b] = e


@jit_sum
def _rotate_back_1q(psi, mu, kind, q, c, s):
    """One-qubit rotation: returns Im <mu|P|psi>, then psi <- U^dag psi, mu <- U^T mu."""
    bit = 1 << q
    g = 0.0
    dim = psi.shape[0]
    if kind == ROT_X:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                p0, p1, m0, m1 = psi[i], psi[i + bit], mu[i], mu[i + bit]
                g += (m0 * p1 + m1 * p0).imag
                psi[i] = c * p0 + 1j * s * p1
                psi[i + bit] = c * p1 + 1j * s * p0
                mu[i] = c * m0 - 1j * s * m1
                mu[i + bit] = c * m1 - 1j * s * m0
    elif kind == ROT_Y:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                p0, p1, m0, m1 = psi[i], psi[i + bit], mu[i], mu[i + bit]
                g += (m1 * p0).real - (m0 * p1).real
                psi[i] = c * p0 + s * p1
                psi[i + bit] = c * p1 - s * p0
                mu[i] = c * m0 + s * m1
                mu[i + bit] = c * m1 - s * m0
    else:
        e0, e1 = complex(c, s), complex(c, -s)
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                p0, m0 = psi[i], mu[i]
                g += (m0 * p0).imag
                psi[i] = e0 * p0
                mu[i] = e1 * m0
            for i in range(hi + bit, hi + 2 * bit):
                p1, m1 = psi[i], mu[i]
                g -= (m1 * p1).imag
                psi[i] = e1 * p1
                mu[i] = e0 * m1
    return g


@jit_sum
def _rotate_back_pauli(psi, mu, x, z, ny, hb, c, s):
    """As ``_rotate_back_1q`` for a rotation about any Pauli string (P^T = (-1)^ny P)."""
    g = 0.0
    if hb < 0:
        for i in range(psi.shape[0]):
            sign = 1.0 if _parity(i & z) == 0 else -1.0
            g += sign * (mu[i] * psi[i]).imag
            psi[i] *= complex(c, sign * s)
            mu[i] *= complex(c, -sign * s)
        return g
    ph = _PHASES[ny]
    sigma = 1.0 if ny % 2 == 0 else -1.0
    bit = 1 << hb
    for hi in range(0, psi.shape[0], 2 * bit):
        for i in range(hi, hi + bit):
            k = i ^ x
            p0, p1, m0, m1 = psi[i], psi[k], mu[i], mu[k]
            f0 = ph if _parity(k & z) == 0 else -ph
            f1 = ph if _parity(i & z) == 0 else -ph
            g += (m0 * f0 * p1 + m1 * f1 * p0).imag
            psi[i] = c * p0 + 1j * s * f0 * p1
            psi[k] = c * p1 + 1j * s * f1 * p0
            mu[i] = c * m0 - 1j * s * sigma * f0 * m1
            mu[k] = c * m1 - 1j * s * sigma * f1 * m0
    return g


@jit
def backward(ops, ipool, cpool, cos, sin, psi, mu, grads):
    """Walk the tape backwards from the final psi and mu = conj(H psi): grads[b, j] = dE/dphi_j."""
    tmp = np.empty(16, dtype=np.complex128)
    for b in range(psi.shape[0]):
        row, lam = psi[b], mu[b]
        for n in range(ops.shape[0] - 1, -1, -1):
            kind = ops[n, 0]
            if kind >= FIX1:
                _fixed(row, ops[n], 1, ipool, cpool, tmp)
                _fixed(lam, ops[n], 2, ipool, cpool, tmp)
                continue
            j = ops[n, 1]
            if kind == ROT_PAULI:
                g = _rotate_back_pauli(row, lam, ops[n, 2], ops[n, 3], ops[n, 4], ops[n, 5], cos[b, j], sin[b, j])
            else:
                g = _rotate_back_1q(row, lam, kind, ops[n, 2], cos[b, j], sin[b, j])
            grads[b, j] = g


@jit
def adjoint(ops, ipool, cpool, cos, sin, indptr, indices, data, psi, mu, energy, grads):
    """Energies and dE/dphi for every row: forward, H, backward in one call."""
    forward(ops, ipool, cpool, cos, sin, psi)
    hamiltonian(indptr, indices, data, psi, mu, energy)
    backward(ops, ipool, cpool, cos, sin, psi, mu, grads)


__all__ = ["adjoint", "backward", "forward", "hamiltonian"]
