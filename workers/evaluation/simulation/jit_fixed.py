"""Compiled kernels of parameter-free gates (see ``tape.py`` for the encodings).

Each works in place on one state and takes ``variant`` 0 (M), 1 (M^dagger) or 2 (M^T); the tape stores the three
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

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@jit
def gate1(psi, q, cpool, off):
    m00, m01, m10, m11 = cpool[off], cpool[off + 1], cpool[off + 2], cpool[off + 3]
    bit = 1 << q
    dim = psi.shape[0]
    if m01 == 0 and m10 == 0:
        for hi in range(0, dim, 2 * bit):
            if m00 != 1:
                for i in range(hi, hi + bit):
                    psi[i] *= m00
            if m11 != 1:
                for i in range(hi + bit, hi + 2 * bit):
                    psi[i] *= m11
        return
    for hi in range(0, dim, 2 * bit):
        for i in range(hi, hi + bit):
            p0, p1 = psi[i], psi[i + bit]
            psi[i] = m00 * p0 + m01 * p1
            psi[i + bit] = m10 * p0 + m11 * p1


@jit
def _bases2(dim, q0, q1):
    """(low bit, high bit) strides of a two-qubit gate's sorted qubits."""
    lo, hi = (q0, q1) if q0 < q1 else (q1, q0)
    return 1 << lo, 1 << hi


@jit
def gate2_diagonal(psi, q0, q1, cpool, off):
    b0, b1 = 1 << q0, 1 << q1
    blo, bhi = _bases2(psi.shape[0], q0, q1)
    for s in range(4):
        f = cpool[off + s]
        if f == 1:
            continue
        shift = (s & 1) * b0 + (s >> 1) * b1
        for a in range(0, psi.shape[0], 2 * bhi):
            for b in range(a, a + bhi, 2 * blo):
                for i in range(b + shift, b + shift + blo):
                    psi[i] *= f


@jit
def gate2_monomial(psi, q0, q1, cpool, off, ipool, ioff):
    """out[s] = f[s] in[p[s]] on each group of four amplitudes (rows with p[s] = s and f[s] = 1 untouched)."""
    b0, b1 = 1 << q0, 1 << q1
    o1, o2, o3 = b0, b1, b0 + b1
    p0, p1, p2, p3 = ipool[ioff], ipool[ioff + 1], ipool[ioff + 2], ipool[ioff + 3]
    f0, f1, f2, f3 = cpool[off], cpool[off + 1], cpool[off + 2], cpool[off + 3]
    t0, t1 = p0 != 0 or f0 != 1, p1 != 1 or f1 != 1
    t2, t3 = p2 != 2 or f2 != 1, p3 != 3 or f3 != 1
    blo, bhi = _bases2(psi.shape[0], q0, q1)
    src = np.empty(4, dtype=np.complex128)
    for a in range(0, psi.shape[0], 2 * bhi):
        for b in range(a, a + bhi, 2 * blo):
            for i in range(b, b + blo):
                src[0], src[1], src[2], src[3] = psi[i], psi[i + o1], psi[i + o2], psi[i + o3]
                if t0:
                    psi[i] = f0 * src[p0]
                if t1:
                    psi[i + o1] = f1 * src[p1]
                if t2:
                    psi[i + o2] = f2 * src[p2]
                if t3:
                    psi[i + o3] = f3 * src[p3]


@jit
def gate2_dense(psi, q0, q1, cpool, off):
    m = cpool[off:off + 16].copy()
    o1, o2 = 1 << q0, 1 << q1
    o3 = o1 + o2
    blo, bhi = _bases2(psi.shape[0], q0, q1)
    for a in range(0, psi.shape[0], 2 * bhi):
        for b in range(a, a + bhi, 2 * blo):
            for i in range(b, b + blo):
                x0, x1, x2, x3 = psi[i], psi[i + o1], psi[i + o2], psi[i + o3]
                psi[i] = m[0] * x0 + m[1] * x1 + m[2] * x2 + m[3] * x3
                psi[i + o1] = m[4] * x0 + m[5] * x1 + m[6] * x2 + m[7] * x3
                psi[i + o2] = m[8] * x0 + m[9] * x1 + m[10] * x2 + m[11] * x3
                psi[i + o3] = m[12] * x0 + m[13] * x1 + m[14] * x2 + m[15] * x3


@jit
def gate_k(psi, k, ioff, coff, variant, ipool, cpool, tmp):
    """Any gate on k qubits: ipool holds the sorted qubits, the 2^k offsets and per-variant touched-row flags."""
    d = 1 << k
    offs = ioff + k
    touched = offs + d + variant * d
    mat = coff + variant * d * d
    for j in range(psi.shape[0] >> k):
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
                        acc += m * psi[base + ipool[offs + c]]
                tmp[s] = acc
        for s in range(d):
            if ipool[touched + s]:
                psi[base + ipool[offs + s]] = tmp[s]
