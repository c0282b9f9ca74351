"""A compiled ``Program`` flattened into a *tape*: integer and complex arrays the compiled kernels (``jit.py``) walk.

One row of ``ops`` (int64, width ``WIDTH``) per operation, built once per circuit:

- ``ROT_X``, ``ROT_Y``, ``ROT_Z`` (one-qubit Pauli rotations): ``[kind, angle index, qubit, ...]``.
- ``ROT_PAULI`` (a rotation about any Pauli string P = i^ny X^x Z^z): ``[kind, angle index, x mask, z mask,
  ny mod 4, highest bit of x (-1 when x = 0), ...]``. ``P|k> = i^ny (-1)^popcount(k & z) |k ^ x>``.
- Parameter-free gates, each with its three variants (M, M^dagger, M^T) stored one after another in ``cpool``
  (exact zeros where the matrix has none):

  - ``FIX1`` (one qubit): ``[kind, cpool offset, qubit, ...]``, three 2 x 2 matrices row-major;
  - ``FIX2_DIAG`` (two qubits, diagonal): ``[kind, cpool offset, q0, q1, ...]``, three diagonals of 4;
  - ``FIX2_MONO`` (two qubits, one nonzero per row): ``[kind, cpool offset, q0, q1, ipool offset, ...]``, three
    permutations (``out[s] = f[s] in[p[s]]``) in ``ipool`` and three phase vectors in ``cpool``;
  - ``FIX2_DENSE``: ``[kind, cpool offset, q0, q1, ...]``, three 4 x 4 matrices;
  - ``FIXK`` (3 or 4 qubits): ``[kind, cpool offset, k, ipool offset, ...]``; ``ipool`` holds the k qubits sorted
    ascending, the 2^k amplitude offsets of the local basis states, and per variant a flag per row saying whether
    the row differs from the identity's (rows that do not are skipped).

  Local basis states follow Qiskit's order: the gate's qubits[0] is the least significant bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .program import FixedGate, Program, Rotation

ROT_X, ROT_Y, ROT_Z, ROT_PAULI = 0, 1, 2, 3
FIX1, FIX2_DIAG, FIX2_MONO, FIX2_DENSE, FIXK = 4, 5, 6, 7, 8
WIDTH = 6
MAX_FIXED_QUBITS = 4
"""The widest parameter-free standard gate (c3sx, rcccx) acts on 4 qubits."""
ZERO = 1e-15
"""Matrix entries below this magnitude are exact zeros (translation rounding), skipped by the kernels."""


@dataclasses.dataclass(frozen=True, eq=False)
class Tape:
    """The arrays of one program; see the module docstring."""

    num_qubits: int
    ops: np.ndarray
    ipool: np.ndarray
    cpool: np.ndarray


def _rotation_row(op: Rotation) -> list[int]:
    if len(op.qubits) == 1:
        kind = {"X": ROT_X, "Y": ROT_Y, "Z": ROT_Z}[op.paulis]
        return [kind, op.index, op.qubits[0], 0, 0, 0]
    x = z = ny = 0
    for q, letter in zip(op.qubits, op.paulis):
        if letter in "XY":
            x |= 1 << q
        if letter in "ZY":
            z |= 1 << q
        ny += letter == "Y"
    return [ROT_PAULI, op.index, x, z, ny % 4, x.bit_length() - 1]


def _variants(op: FixedGate) -> list[np.ndarray]:
    matrix = np.where(np.abs(op.matrix) < ZERO, 0, op.matrix).astype(complex)
    return [matrix, matrix.conj().T, matrix.T]


def _fixed_row(op: FixedGate, ipool: list[int], cpool: list[np.ndarray]) -> list[int]:
    k = len(op.qubits)
    if not 1 <= k <= MAX_FIXED_QUBITS:
        raise ValueError(f"fixed gates act on 1 to {MAX_FIXED_QUBITS} qubits, got {k}")
    variants = _variants(op)
    coff = sum(m.size for m in cpool)
    if k == 1:
        cpool.extend(m.ravel() for m in variants)
        return [FIX1, coff, op.qubits[0], 0, 0, 0]
    if k == 2:
        q0, q1 = op.qubits
        if all(np.count_nonzero(m[s]) == 1 for m in variants[:1] for s in range(4)):
            if all(variants[0][s, s] != 0 for s in range(4)):
                cpool.extend(np.diag(m).copy() for m in variants)
                return [FIX2_DIAG, coff, q0, q1, 0, 0]
            ioff = len(ipool)
            for m in variants:
                perm = [int(np.flatnonzero(m[s])[0]) for s in range(4)]
                ipool.extend(perm)
                cpool.append(np.array([m[s, perm[s]] for s in range(4)]))
            return [FIX2_MONO, coff, q0, q1, ioff, 0]
        cpool.extend(m.ravel() for m in variants)
        return [FIX2_DENSE, coff, q0, q1, 0, 0]
    d = 2**k
    row = [FIXK, coff, k, len(ipool), 0, 0]
    ipool.extend(sorted(op.qubits))
    ipool.extend(sum(((c >> t) & 1) << q for t, q in enumerate(op.qubits)) for c in range(d))
    identity = np.eye(d)
    for variant in variants:
        ipool.extend(int(not np.array_equal(variant[s], identity[s])) for s in range(d))
        cpool.append(variant.ravel())
    return row


def build_tape(program: Program) -> Tape:
    """The tape of ``program`` (``Rotation`` and ``FixedGate`` ops in order)."""
    ops: list[list[int]] = []
    ipool: list[int] = []
    cpool: list[np.ndarray] = []
    for op in program.ops:
        ops.append(_rotation_row(op) if isinstance(op, Rotation) else _fixed_row(op, ipool, cpool))
    return Tape(program.num_qubits, np.array(ops, dtype=np.int64).reshape(len(ops), WIDTH),
                np.array(ipool + [0], dtype=np.int64),
                np.concatenate(cpool + [np.zeros(1, dtype=complex)]).astype(complex))
