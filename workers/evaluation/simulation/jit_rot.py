"""Compiled Pauli-rotation kernels on *split* states: the real parts in one plane, the imaginary parts in another.

With split planes every one-qubit rotation is a stride-1 loop of real multiply-adds over the two halves of each
block (``lo`` = bit 0, ``up`` = bit 1), which LLVM vectorises; interleaved complex numbers do not vectorise.
``c = cos(phi/2)``, ``s = sin(phi/2)``, ``U = exp(-i phi/2 P) = c - i s P``.

Backward (adjoint differentiation, see ``statevector.py``): per rotation, in one pass over the amplitude pairs,
``g = Im <mu|P|psi>`` (mu = conj(lambda)), ``psi <- U^dag psi``, ``mu <- U^T mu``.
"""

from __future__ import annotations

import numpy as np

from .jit_cache import kernel
from .tape import ROT_X, ROT_Y

jit = kernel(fastmath={"contract"})
jit_sum = kernel(fastmath={"contract", "reassoc", "nsz"})
"""For loops that also sum a gradient: reassociation lets the sum vectorise (rounding changes at ~1e-16)."""
_PHASES = np.array([1.0, 1j, -1.0, -1j])
VECTOR_RUN = 16
"""Below this run of contiguous amplitudes (qubits 0-3) a gate loops over single amplitudes, not slices (measured:
at 8 the per-block slices cost more than they save; 16 and 32 were even)."""


@jit
def parity(v):
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    v ^= v >> 2
    v ^= v >> 1
    return v & 1


@jit
def _rx(r0, i0, r1, i1, c, s):
    for t in range(r0.shape[0]):
        a, b, u, v = r0[t], i0[t], r1[t], i1[t]
        r0[t], i0[t], r1[t], i1[t] = c * a + s * v, c * b - s * u, c * u + s * b, c * v - s * a


@jit
def _ry(r0, i0, r1, i1, c, s):
    for t in range(r0.shape[0]):
        a, b, u, v = r0[t], i0[t], r1[t], i1[t]
        r0[t], i0[t], r1[t], i1[t] = c * a - s * u, c * b - s * v, s * a + c * u, s * b + c * v


@jit
def _phase(r, i, c, s):
    """(r + i i) *= (c + i s)."""
    for t in range(r.shape[0]):
        a, b = r[t], i[t]
        r[t], i[t] = c * a - s * b, c * b + s * a


@jit
def _rotate_1q_scalar(re, im, dim, kind, bit, c, s):
    """Qubits 0-3 (runs shorter than ``VECTOR_RUN``): one loop per kind over single amplitude pairs."""
    if kind == ROT_X:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                j = i + bit
                a, b, u, v = re[i], im[i], re[j], im[j]
                re[i], im[i], re[j], im[j] = c * a + s * v, c * b - s * u, c * u + s * b, c * v - s * a
    elif kind == ROT_Y:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                j = i + bit
                a, b, u, v = re[i], im[i], re[j], im[j]
                re[i], im[i], re[j], im[j] = c * a - s * u, c * b - s * v, s * a + c * u, s * b + c * v
    else:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                j = i + bit
                a, b, u, v = re[i], im[i], re[j], im[j]
                re[i], im[i], re[j], im[j] = c * a + s * b, c * b - s * a, c * u - s * v, c * v + s * u


@jit
def rotate_1q(re, im, dim, kind, q, c, s):
    """exp(-i phi/2 P_q) in place, P = X, Y or Z."""
    bit = 1 << q
    if bit < VECTOR_RUN:
        _rotate_1q_scalar(re, im, dim, kind, bit, c, s)
        return
    for hi in range(0, dim, 2 * bit):
        lo, up = slice(hi, hi + bit), slice(hi + bit, hi + 2 * bit)
        if kind == ROT_X:
            _rx(re[lo], im[lo], re[up], im[up], c, s)
        elif kind == ROT_Y:
            _ry(re[lo], im[lo], re[up], im[up], c, s)
        else:
            _phase(re[lo], im[lo], c, -s)
            _phase(re[up], im[up], c, s)


@jit_sum
def _rx_back(pr0, pi0, pr1, pi1, mr0, mi0, mr1, mi1, c, s):
    g = 0.0
    for t in range(pr0.shape[0]):
        a, b, u, v = pr0[t], pi0[t], pr1[t], pi1[t]
        w, x, y, z = mr0[t], mi0[t], mr1[t], mi1[t]
        g += w * v + x * u + y * b + z * a  # Im(m0 p1 + m1 p0)
        pr0[t], pi0[t], pr1[t], pi1[t] = c * a - s * v, c * b + s * u, c * u - s * b, c * v + s * a
        mr0[t], mi0[t], mr1[t], mi1[t] = c * w + s * z, c * x - s * y, c * y + s * x, c * z - s * w
    return g


@jit_sum
def _ry_back(pr0, pi0, pr1, pi1, mr0, mi0, mr1, mi1, c, s):
    g = 0.0
    for t in range(pr0.shape[0]):
        a, b, u, v = pr0[t], pi0[t], pr1[t], pi1[t]
        w, x, y, z = mr0[t], mi0[t], mr1[t], mi1[t]
        g += y * a - z * b - w * u + x * v  # Re(m1 p0) - Re(m0 p1)
        pr0[t], pi0[t], pr1[t], pi1[t] = c * a + s * u, c * b + s * v, c * u - s * a, c * v - s * b
        mr0[t], mi0[t], mr1[t], mi1[t] = c * w + s * y, c * x + s * z, c * y - s * w, c * z - s * x
    return g


@jit_sum
def _phase_back(pr, pi, mr, mi, c, s):
    """Im(m p); p *= (c + is); m *= (c - is)."""
    g = 0.0
    for t in range(pr.shape[0]):
        a, b, w, x = pr[t], pi[t], mr[t], mi[t]
        g += w * b + x * a
        pr[t], pi[t] = c * a - s * b, c * b + s * a
        mr[t], mi[t] = c * w + s * x, c * x - s * w
    return g


@jit_sum
def _rotate_1q_back_scalar(pr, pi, mr, mi, dim, kind, bit, c, s):
    """Qubits 0-3: as ``rotate_1q_back``, one loop per kind over single amplitude pairs."""
    g = 0.0
    if kind == ROT_X:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                j = i + bit
                a, b, u, v = pr[i], pi[i], pr[j], pi[j]
                w, x, y, z = mr[i], mi[i], mr[j], mi[j]
                g += w * v + x * u + y * b + z * a
                pr[i], pi[i], pr[j], pi[j] = c * a - s * v, c * b + s * u, c * u - s * b, c * v + s * a
                mr[i], mi[i], mr[j], mi[j] = c * w + s * z, c * x - s * y, c * y + s * x, c * z - s * w
    elif kind == ROT_Y:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                j = i + bit
                a, b, u, v = pr[i], pi[i], pr[j], pi[j]
                w, x, y, z = mr[i], mi[i], mr[j], mi[j]
                g += y * a - z * b - w * u + x * v
                pr[i], pi[i], pr[j], pi[j] = c * a + s * u, c * b + s * v, c * u - s * a, c * v - s * b
                mr[i], mi[i], mr[j], mi[j] = c * w + s * y, c * x + s * z, c * y - s * w, c * z - s * x
    else:
        for hi in range(0, dim, 2 * bit):
            for i in range(hi, hi + bit):
                j = i + bit
                a, b, u, v = pr[i], pi[i], pr[j], pi[j]
                w, x, y, z = mr[i], mi[i], mr[j], mi[j]
                g += w * b + x * a - y * v - z * u
                pr[i], pi[i], pr[j], pi[j] = c * a - s * b, c * b + s * a, c * u + s * v, c * v - s * u
                mr[i], mi[i], mr[j], mi[j] = c * w + s * x, c * x - s * w, c * y - s * z, c * z + s * y
    return g


@jit
def rotate_1q_back(pr, pi, mr, mi, dim, kind, q, c, s):
    """Gradient of a one-qubit rotation, then psi <- U^dag psi and mu <- U^T mu."""
    bit = 1 << q
    if bit < VECTOR_RUN:
        return _rotate_1q_back_scalar(pr, pi, mr, mi, dim, kind, bit, c, s)
    g = 0.0
    for hi in range(0, dim, 2 * bit):
        lo, up = slice(hi, hi + bit), slice(hi + bit, hi + 2 * bit)
        if kind == ROT_X:
            g += _rx_back(pr[lo], pi[lo], pr[up], pi[up], mr[lo], mi[lo], mr[up], mi[up], c, s)
        elif kind == ROT_Y:
            g += _ry_back(pr[lo], pi[lo], pr[up], pi[up], mr[lo], mi[lo], mr[up], mi[up], c, s)
        else:
            g += _phase_back(pr[lo], pi[lo], mr[lo], mi[lo], c, s)
            g -= _phase_back(pr[up], pi[up], mr[up], mi[up], c, -s)
    return g


@jit
def rotate_pauli(re, im, dim, x, z, ny, hb, c, s):
    """exp(-i phi/2 P) for P = i^ny X^x Z^z on any qubits; P|k> = i^ny (-1)^popcount(k & z) |k ^ x>."""
    if hb < 0:
        for i in range(dim):
            sign = 1.0 if parity(i & z) == 0 else -1.0
            a, b = re[i], im[i]
            re[i], im[i] = c * a + sign * s * b, c * b - sign * s * a
        return
    ph = _PHASES[ny]
    bit = 1 << hb
    for hi in range(0, dim, 2 * bit):
        for i in range(hi, hi + bit):
            k = i ^ x
            p0, p1 = complex(re[i], im[i]), complex(re[k], im[k])
            f0 = ph if parity(k & z) == 0 else -ph
            f1 = ph if parity(i & z) == 0 else -ph
            n0, n1 = c * p0 - 1j * s * f0 * p1, c * p1 - 1j * s * f1 * p0
            re[i], im[i], re[k], im[k] = n0.real, n0.imag, n1.real, n1.imag


@jit_sum
def rotate_pauli_back(pr, pi, mr, mi, dim, x, z, ny, hb, c, s):
    """As ``rotate_1q_back`` for any Pauli string (P^T = (-1)^ny P)."""
    g = 0.0
    if hb < 0:
        for i in range(dim):
            sign = 1.0 if parity(i & z) == 0 else -1.0
            a, b, w, v = pr[i], pi[i], mr[i], mi[i]
            g += sign * (w * b + v * a)
            pr[i], pi[i] = c * a - sign * s * b, c * b + sign * s * a
            mr[i], mi[i] = c * w + sign * s * v, c * v - sign * s * w
        return g
    ph = _PHASES[ny]
    sigma = 1.0 if ny % 2 == 0 else -1.0
    bit = 1 << hb
    for hi in range(0, dim, 2 * bit):
        for i in range(hi, hi + bit):
            k = i ^ x
            p0, p1 = complex(pr[i], pi[i]), complex(pr[k], pi[k])
            m0, m1 = complex(mr[i], mi[i]), complex(mr[k], mi[k])
            f0 = ph if parity(k & z) == 0 else -ph
            f1 = ph if parity(i & z) == 0 else -ph
            g += (m0 * f0 * p1 + m1 * f1 * p0).imag
            n0, n1 = c * p0 + 1j * s * f0 * p1, c * p1 + 1j * s * f1 * p0
            l0, l1 = c * m0 - 1j * s * sigma * f0 * m1, c * m1 - 1j * s * sigma * f1 * m0
            pr[i], pi[i], pr[k], pi[k] = n0.real, n0.imag, n1.real, n1.imag
            mr[i], mi[i], mr[k], mi[k] = l0.real, l0.imag, l1.real, l1.imag
    return g
