"""Reparametrisation-invariant sampling and gradients: measure in the gate angles, not in the Parameters.

A compiled program has angles ``phi = A theta + b``. Multiplying a Parameter's coefficients by m (``m*theta``),
splitting it into a sum of Parameters or shifting it by a constant prepares exactly the same family of states,
but the raw derivatives ``dE/dtheta_k`` scale with the coefficients. Statistics that a verdict is based on are
therefore taken in angle units:

- **sampling**: ``theta_k = 2 pi u / c_k`` with ``u ~ U[0, 1)`` and ``c_k`` the smallest non-zero ``|A[j, k]|``, so
  every angle that depends on theta_k with coefficient ``c_k`` (or an integer multiple of it) is uniform modulo
  2 pi whatever the scale; multiplying the coefficients of theta_k by m gives identical angle samples;
- **gradients**: ``g_k = (dE/dtheta_k) / ||A[:, k]||``, the derivative along a unit step of the angles theta_k
  drives, so ``m*theta`` gives identical ``g_k``; a Parameter shared by occurrences with coefficients ``A[j, k]``
  is compared with the level a 2-design gives per occurrence (``Sum_j A[j, k]^2`` times it, before dividing).

The norm is taken over the **fused** occurrences (``fused_coefficients``): occurrences that are one rotation
written several times (``rz(t) rz(t)``, ``rz(t) cz rz(t)``, ``ry(t) x ry(-t)``: the same Pauli generator once
carried forward through gates that commute with it or map it to +-a Pauli) are summed into one row first. Their
derivatives add coherently, so ``||A[:, k]||`` over the written copies (sqrt(m) for m copies) would report an m
times larger variance for the very same circuit as ``rz(m t)``, enough to turn a barren plateau into "no barren
plateau" (docs/scoring.md).
"""

from __future__ import annotations

import numpy as np

from .simulation.program import FixedGate, Program, Rotation

_CARRY_LIMIT = 64
"""Ops touching a carried generator's qubits after which the search for a copy of it gives up."""
_LETTERS = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
            "Z": np.diag([1.0, -1.0])}
_conjugations: dict = {}


def _local_matrix(letters: str) -> np.ndarray:
    """The Pauli string on a gate's qubits (letters[0] on qubits[0], the least significant bit)."""
    out = np.eye(1)
    for letter in letters:
        out = np.kron(_LETTERS[letter], out)
    return out


def _conjugate(gate: FixedGate, letters: str) -> tuple[str, float] | None:
    """(Q, s) with ``U P U^dagger = s Q`` for the Pauli string P on the gate's qubits, or None when it is not +-a Pauli
    string (a non-Clifford gate for this P)."""
    key = (gate.matrix.tobytes(), gate.matrix.shape, letters)
    if key not in _conjugations:
        u = gate.matrix
        image = u @ _local_matrix(letters) @ u.conj().T
        found = None
        for code in range(4 ** len(letters)):
            q = "".join("IXYZ"[(code >> (2 * i)) & 3] for i in range(len(letters)))
            overlap = np.trace(_local_matrix(q).conj().T @ image) / image.shape[0]
            if abs(abs(overlap) - 1) < 1e-9 and abs(overlap.imag) < 1e-9:
                found = (q, float(np.sign(overlap.real)))
                break
            if abs(overlap) > 1e-9:
                break
        _conjugations[key] = found
    return _conjugations[key]


def _carry(op, pauli: dict) -> tuple[dict, float] | str:
    """The generator ``pauli`` (qubit -> letter) moved past ``op``: (new generator, sign), "same" when ``op`` is a
    rotation about exactly this generator, or "blocked"."""
    if isinstance(op, Rotation):
        theirs = dict(zip(op.qubits, op.paulis))
        if theirs == pauli:
            return "same"
        clashes = sum(1 for q, letter in theirs.items() if pauli.get(q, "I") not in ("I", letter))
        return (pauli, 1.0) if clashes % 2 == 0 else "blocked"
    mapped = _conjugate(op, "".join(pauli.get(q, "I") for q in op.qubits))
    if mapped is None:
        return "blocked"
    out = {q: letter for q, letter in pauli.items() if q not in op.qubits}
    out.update({q: letter for q, letter in zip(op.qubits, mapped[0]) if letter != "I"})
    return out, mapped[1]


def fused_coefficients(program: Program) -> np.ndarray:
    """``A`` with every rotation occurrence that is a copy of a later one (same generator once carried forward, see
    the module docstring) added, with its sign, into that later row and removed."""
    rows = np.array(program.coefficients, dtype=float, copy=True)
    keep = np.ones(rows.shape[0], dtype=bool)
    ops = program.ops
    supports = [frozenset(op.qubits) for op in ops]
    for start, op in enumerate(ops):
        if not isinstance(op, Rotation) or not rows[op.index].any():
            continue
        pauli, sign, touched = dict(zip(op.qubits, op.paulis)), 1.0, 0
        for position in range(start + 1, len(ops)):
            later = ops[position]
            if supports[position].isdisjoint(pauli):
                continue
            touched += 1
            moved = _carry(later, pauli)
            if moved == "same":
                rows[later.index] += sign * rows[op.index]
                keep[op.index] = False
                break
            if moved == "blocked" or touched > _CARRY_LIMIT:
                break
            pauli, factor = moved
            sign *= factor
    return rows[keep]


def parameter_scales(program: Program) -> tuple[np.ndarray, np.ndarray]:
    """(smallest non-zero |A[j, k]| per Parameter, ||A[:, k]|| of the fused occurrences per Parameter); 1 for a
    Parameter in no angle."""
    a = np.abs(program.coefficients)
    fused = np.abs(fused_coefficients(program))
    masked = np.where(a > 0, a, np.inf)
    smallest = masked.min(axis=0) if a.shape[0] else np.full(program.num_parameters, np.inf)
    smallest = np.where(np.isfinite(smallest), smallest, 1.0)
    norms = np.sqrt(np.sum(fused * fused, axis=0)) if a.shape[0] else np.zeros(program.num_parameters)
    return smallest, np.where(norms > 0, norms, 1.0)


def sample_parameters(program: Program, rng: np.random.Generator, samples: int) -> np.ndarray:
    """``samples`` parameter vectors whose angles are uniform modulo 2 pi, whatever the coefficients' scale."""
    smallest, _ = parameter_scales(program)
    return rng.uniform(0.0, 1.0, size=(samples, program.num_parameters)) * (2 * np.pi / smallest)


def angle_unit_gradients(program: Program, grads: np.ndarray) -> np.ndarray:
    """``dE/dtheta_k / ||A[:, k]||`` for a batch of gradients (B, num_parameters)."""
    _, norms = parameter_scales(program)
    return np.asarray(grads, dtype=float) / norms
