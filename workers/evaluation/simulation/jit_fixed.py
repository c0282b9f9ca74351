"""Compiled kernels of parameter-free gates (see ``tape.py`` for the encodings).

Each works in place on one split state (``re``, ``im`` planes, see ``jit_rot.py``) and takes ``variant`` 0 (M), 1 (M^dagger) or 2 (M^T); the tape stores the three
variants one after another. The gate's data is loaded into local scalars before the loop over amplitudes, so the
loop body is a handful of loads, multiplies and stores:

- ``gate1``: any one-qubit gate, a 2 x 2 product per amplitude pair (diagonal gates multiply only the entries that
  are not 1);
- ``gate2_diagonal`` (CZ, CS, CP at fixed angles, ...): one multiply per amplitude whose phase is not 1;
- ``gate2_monomial`` (CX, CY, SWAP, iSWAP, DCX, ...): a permutation with phases, writing only moved amplitudes;
- ``gate2_dense`` (CH, CSX, ECR, ...): a 4 x 4 product per group of four amplitudes;
- ``gate_k``: any gate on 3 or 4 qubits (CCX, CSWAP, C3SX, ...), generic over its 2^k local amplitudes.
"""

from __future__ import annotations

import numpy as np

from .jit_cache import kernel
from .jit_rot import VECTOR_RUN

jit = kernel()


@jit
def _mul(re, im, i, f):
    a, b = re[i], im[i]
    re[i], im[i] = f.real * a - f.imag * b, f.real * b + f.imag * a


@jit
def _mix(x, y, a, b, c, d):
    """(x, y) <- (a x + b y, c x + d y), elementwise."""
    for t in range(x.shape[0]):
        u, v = x[t], y[t]
        x[t], y[t] = a * u + b * v, c * u + d * v


@jit
def gate1(re, im, dim, q, cpool, off):
    m00, m01, m10, m11 = cpool[off], cpool[off + 1], cpool[off + 2], cpool[off + 3]
    bit = 1 << q
    if m01 == 0 and m10 == 0:
        for hi in range(0, dim, 2 * bit):
            if m00 != 1:
                for i in range(hi, hi + bit):
                    _mul(re, im, i, m00)
            if m11 != 1:
                for i in range(hi + bit, hi + 2 * bit):
                    _mul(re, im, i, m11)
        return
    if m00.imag == 0 and m01.imag == 0 and m10.imag == 0 and m11.imag == 0:  # H, X, ...: a real mix per plane
        a, b, c, d = m00.real, m01.real, m10.real, m11.real
        for hi in range(0, dim, 2 * bit):
            if bit >= VECTOR_RUN:
                lo, up = slice(hi, hi + bit), slice(hi + bit, hi + 2 * bit)
                _mix(re[lo], re[up], a, b, c, d)
                _mix(im[lo], im[up], a, b, c, d)
            else:
                for i in range(hi, hi + bit):
                    j = i + bit
                    re[i], re[j] = a * re[i] + b * re[j], c * re[i] + d * re[j]
                    im[i], im[j] = a * im[i] + b * im[j], c * im[i] + d * im[j]
        return
    for hi in range(0, dim, 2 * bit):
        for i in range(hi, hi + bit):
            j = i + bit
            p0, p1 = complex(re[i], im[i]), complex(re[j], im[j])
            n0, n1 = m00 * p0 + m01 * p1, m10 * p0 + m11 * p1
            re[i], im[i], re[j], im[j] = n0.real, n0.imag, n1.real, n1.imag


@jit
def _strides(q0, q1):
    """(low bit, high bit) strides of a two-qubit gate's sorted qubits."""
    lo, hi = (q0, q1) if q0 < q1 else (q1, q0)
    return 1 << lo, 1 << hi


@jit
def gate2_diagonal(re, im, dim, q0, q1, cpool, off):
    b0, b1 = 1 << q0, 1 << q1
    blo, bhi = _strides(q0, q1)
    for s in range(4):
        f = cpool[off + s]
        if f == 1:
            continue
        shift = (s & 1) * b0 + (s >> 1) * b1
        for a in range(0, dim, 2 * bhi):
            for b in range(a, a + bhi, 2 * blo):
                if f == -1:
                    for i in range(b + shift, b + shift + blo):
                        re[i], im[i] = -re[i], -im[i]
                else:
                    for i in range(b + shift, b + shift + blo):
                        _mul(re, im, i, f)


@jit
def _swap(x, y):
    for t in range(x.shape[0]):
        x[t], y[t] = y[t], x[t]


@jit
def _swap_runs(re, im, dim, blo, bhi, oa, ob):
    for a in range(0, dim, 2 * bhi):
        for b in range(a, a + bhi, 2 * blo):
            if blo >= VECTOR_RUN:
                _swap(re[b + oa:b + oa + blo], re[b + ob:b + ob + blo])
                _swap(im[b + oa:b + oa + blo], im[b + ob:b + ob + blo])
            else:
                for i in range(b, b + blo):
                    re[i + oa], re[i + ob] = re[i + ob], re[i + oa]
                    im[i + oa], im[i + ob] = im[i + ob], im[i + oa]


@jit
def gate2_monomial(re, im, dim, q0, q1, cpool, off, ipool, ioff):
    """out[s] = f[s] in[p[s]] on each group of four amplitudes (rows with p[s] = s and f[s] = 1 untouched)."""
    o = np.array([0, 1 << q0, 1 << q1, (1 << q0) + (1 << q1)])
    p = ipool[ioff:ioff + 4].copy()
    f = cpool[off:off + 4].copy()
    moved = np.array([s for s in range(4) if p[s] != s or f[s] != 1])
    src = np.empty(4, dtype=np.complex128)
    blo, bhi = _strides(q0, q1)
    if len(moved) == 2 and p[moved[0]] == moved[1] and f[moved[0]] == 1 and f[moved[1]] == 1:
        _swap_runs(re, im, dim, blo, bhi, o[moved[0]], o[moved[1]])  # CX, SWAP: exchange two amplitude runs
        return
    for a in range(0, dim, 2 * bhi):
        for b in range(a, a + bhi, 2 * blo):
            for i in range(b, b + blo):
                for t in moved:
                    k = i + o[p[t]]
                    src[t] = f[t] * complex(re[k], im[k])
                for t in moved:
                    k = i + o[t]
                    re[k], im[k] = src[t].real, src[t].imag


@jit
def gate2_dense(re, im, dim, q0, q1, cpool, off):
    m = cpool[off:off + 16].copy()
    o1, o2 = 1 << q0, 1 << q1
    o3 = o1 + o2
    blo, bhi = _strides(q0, q1)
    for a in range(0, dim, 2 * bhi):
        for b in range(a, a + bhi, 2 * blo):
            for i in range(b, b + blo):
                x0, x1 = complex(re[i], im[i]), complex(re[i + o1], im[i + o1])
                x2, x3 = complex(re[i + o2], im[i + o2]), complex(re[i + o3], im[i + o3])
                for r, k in ((0, i), (1, i + o1), (2, i + o2), (3, i + o3)):
                    v = m[4 * r] * x0 + m[4 * r + 1] * x1 + m[4 * r + 2] * x2 + m[4 * r + 3] * x3
                    re[k], im[k] = v.real, v.imag


@jit
def gate_k(re, im, dim, k, ioff, coff, variant, ipool, cpool, tmp):
    """Any gate on k qubits: ipool holds the sorted qubits, the 2^k offsets and per-variant touched-row flags."""
    d = 1 << k
    offs = ioff + k
    touched = offs + d + variant * d
    mat = coff + variant * d * d
    for j in range(dim >> k):
        base = j
        for t in range(k):
            p = ipool[ioff + t]
            base = ((base >> p) << (p + 1)) | (base & ((1 << p) - 1))
        for s in range(d):
            if ipool[touched + s]:
                acc = 0j
                for c in range(d):
                    m = cpool[mat + s * d + c]
                    if m != 0:
                        i = base + ipool[offs + c]
                        acc += m * complex(re[i], im[i])
                tmp[s] = acc
        for s in range(d):
            if ipool[touched + s]:
                i = base + ipool[offs + s]
                re[i], im[i] = tmp[s].real, tmp[s].imag
