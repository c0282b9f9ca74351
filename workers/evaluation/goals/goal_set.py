"""Goal sets: one program scored over several Hamiltonians (a curve's bond lengths, increasing lattice sizes).

A set is a ``Goal`` whose ``members`` are the goals it is scored on; its own Hamiltonian, size, kind and family are
its first member's (what prompts and the barren-plateau check see), its limits apply to every member. The cascade
runs VQE on every member (``workers/evaluation/transfer.py``); the set's error is the **worst** member's (what the
store ranks and the reward pays), and the mean is reported beside it. A lattice set whose members are one family
at several sizes is also scored, unpaid, at ``extrapolate_to`` (default: two sites more than its largest member):
the error at a size the program was never scored on.

Names: ``tfim-4+6+8`` (sizes after the first member's family prefix), ``h2-curve`` (every committed bond length
of a molecule), ``h2-0.50+1.00+2.00``, ``h2+lih`` or any ``+``-joined built-in names; goal files: ``members: [tfim-4, tfim-6, {family: tfim, num_qubits: 8, ...}]`` with ``extrapolate_to``.
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import GoalError
from .goal import Goal, is_valid_goal_name
from .hamiltonians import MAX_LATTICE_QUBITS

MAX_MEMBERS = 16


def _same_lattice(members: list[Goal]) -> bool:
    first = members[0]
    return all(m.is_lattice and m.family == first.family and m.params == first.params for m in members)


def _held_out_size(first: Goal, largest: int) -> int | None:
    """The default held-out size: two sites above the largest member, else the next size the family has."""
    for n in sorted(range(largest + 1, MAX_LATTICE_QUBITS + 1), key=lambda n: (n != largest + 2, n)):
        try:
            first.at_size(n)
        except GoalError:
            continue
        return n
    return None


def goal_set(members: list[Goal], *, name: str | None = None, extrapolate_to: int | None = None,
             description: str | None = None) -> Goal:
    """The set of ``members`` (at least two distinct goals; the first one's limits apply to all)."""
    if not 2 <= len(members) <= MAX_MEMBERS:
        raise GoalError(f"a goal set needs between 2 and {MAX_MEMBERS} members, got {len(members)}")
    if any(m.is_set for m in members):
        raise GoalError("a goal set's members must be single goals, not sets")
    hashes = [m.spec_hash for m in members]
    if len(set(hashes)) != len(hashes):
        raise GoalError(f"a goal set's members must differ; got {[m.name for m in members]}")
    first = members[0]
    members = [dataclasses.replace(m, max_depth=first.max_depth, allowed_gates=first.allowed_gates, hardware=None)
               for m in members]
    lattice = _same_lattice(members)
    largest = max(m.num_qubits for m in members)
    if extrapolate_to is None and lattice:
        extrapolate_to = _held_out_size(members[0], largest)
    if extrapolate_to is not None:
        if not lattice:
            raise GoalError("extrapolate_to needs a lattice set (members of one family with the same parameters)")
        if isinstance(extrapolate_to, bool) or not isinstance(extrapolate_to, int) or \
                not largest < extrapolate_to <= MAX_LATTICE_QUBITS:
            raise GoalError(f"extrapolate_to must be an integer above the largest member ({largest} qubits) and "
                            f"at most {MAX_LATTICE_QUBITS}, got {extrapolate_to!r}")
        members[0].at_size(extrapolate_to)  # a size the family has (2D lattices grow a whole row at a time)
    name = name or "+".join(m.name for m in members)
    if not is_valid_goal_name(name):
        raise GoalError(f"a goal set's name must be 1-64 characters of letters, digits, '_', '.', '+', '-', "
                        f"got {name!r}")
    listing = ", ".join(f"{m.name} ({m.num_qubits} qubits)" for m in members)
    desc = description or (
        f"A goal set: one program is scored on each of {listing}; the score is the worst member's energy error, "
        f"so create_ansatz(num_qubits) must build a good circuit at every size. First member: {first.description}")
    return dataclasses.replace(first, name=name, description=desc, members=tuple(members),
                               extrapolate_to=extrapolate_to, hardware=first.hardware)


def member_names(name: str) -> list[str]:
    """``tfim-4+6+8`` -> [tfim-4, tfim-6, tfim-8]; ``tfim-2x2+2x3`` -> [tfim-2x2, tfim-2x3]; ``h2-0.50+1.00``
    -> [h2-0.50, h2-1.00]; ``h2+lih`` -> [h2, lih] (a bare size or bond length reuses the first member's prefix)."""
    parts = [p.strip() for p in name.split("+")]
    if len(parts) < 2 or not all(parts):
        raise GoalError(f"a goal set name joins goal names with '+', e.g. tfim-4+6+8 or h2+lih; got '{name}'")
    prefix = parts[0].rsplit("-", 1)[0] if "-" in parts[0] else None
    out = [parts[0]]
    for p in parts[1:]:
        if re.fullmatch(r"\d+x\d+|\d+(\.\d+)?", p):
            if prefix is None:
                raise GoalError(f"'{p}' in '{name}' is a bare size, but '{parts[0]}' has no '<family>-<N>' prefix")
            out.append(f"{prefix}-{p}")
        else:
            out.append(p)
    return out


def curve_names(name: str, molecules: list[str]) -> list[str]:
    """``h2-curve`` -> every committed bond length of h2 (``h2-0.50``, ``h2-0.60``, ...), shortest first."""
    molecule = name.removesuffix("-curve")
    points = [m for m in molecules if re.fullmatch(re.escape(molecule) + r"-\d+\.\d+", m)]
    if len(points) < 2:
        curves = sorted({m.rsplit("-", 1)[0] for m in molecules if re.fullmatch(r".+-\d+\.\d+", m)})
        raise GoalError(f"no dissociation curve '{name}'; curves: {', '.join(c + '-curve' for c in curves)}")
    return sorted(points, key=lambda m: float(m.rsplit("-", 1)[1]))
