"""A compiled ``Program`` flattened into a *tape*: integer and complex arrays the compiled kernels (``jit.py``) walk.

One row of ``ops`` (int64, width ``WIDTH``) per operation, built once per circuit:

- ``ROT_X``, ``ROT_Y``, ``ROT_Z`` (one-qubit Pauli rotations): ``[kind, angle index, qubit, ...]``.
- ``ROT_PAULI`` (a rotation about any Pauli string P = i^ny X^x Z^z): ``[kind, angle index, x mask, z mask,
  ny mod 4, highest bit of x (-1 when x = 0), ...]``. ``P|k> = i^ny (-1)^popcount(k & z) |k ^ x>``.
- ``FIXED`` (any parameter-free gate on k <= 4 qubits): ``[kind, cpool offset, k, ipool offset, ...]``. ``ipool``
  holds the k qubits sorted ascending (for inserting zero bits), the 2^k amplitude offsets of the gate's local basis
  states (Qiskit order: qubits[0] is the least significant bit), and for each variant (M, M^dagger, M^T) a flag per
  row saying whether the row differs from the identity's (rows that do not are skipped: CZ touches one amplitude in
  four). ``cpool`` holds the three d x d matrices row-major, exact zeros where the matrix has none.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .program import FixedGate, Program, Rotation

ROT_X, ROT_Y, ROT_Z, ROT_PAULI, FIXED = 0, 1, 2, 3, 4
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


def _fixed_row(op: FixedGate, ipool: list[int], cpool: list[np.ndarray]) -> list[int]:
    k = len(op.qubits)
    if not 1 <= k <= MAX_FIXED_QUBITS:
        raise ValueError(f"fixed gates act on 1 to {MAX_FIXED_QUBITS} qubits, got {k}")
    d = 2**k
    matrix = np.where(np.abs(op.matrix) < ZERO, 0, op.matrix)
    offs = [sum(((c >> t) & 1) << q for t, q in enumerate(op.qubits)) for c in range(d)]
    row = [FIXED, sum(m.size for m in cpool), k, len(ipool), 0, 0]
    ipool.extend(sorted(op.qubits))
    ipool.extend(offs)
    identity = np.eye(d)
    for variant in (matrix, matrix.conj().T, matrix.T):
        ipool.extend(int(not np.array_equal(variant[s], identity[s])) for s in range(d))
        cpool.append(np.ascontiguousarray(variant, dtype=complex).ravel())
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
