"""Built-in goals by name (lattice families at any size, committed molecules, goal sets of built-in names).

Built-in names (any family also with ``-open``): chains ``tfim-N``, ``heisenberg-N``, ``xxz-N``, ``xy-N``, ``j1j2-N``
(N qubits), ``hubbard-L`` (L sites, 2L qubits); square lattices ``<family>-RxC`` (R rows, C columns); two-leg
ladders ``<family>-ladder-C`` (C rungs); the committed molecules (``h2``, ``lih``, ...). User goals come from YAML
(see ``files.py``).
"""

from __future__ import annotations

import re

from ..errors import GoalError
from .goal import DEFAULT_ALLOWED_GATES, DEFAULT_MAX_DEPTH, Goal, check_limits, checked, lattice_goal
from .hamiltonians import FAMILIES, molecule_data, molecule_hamiltonian, molecule_names

_NAME_RE = re.compile(r"^(?P<family>[a-z][a-z0-9]*?)(?P<ladder>-ladder)?(?P<open>-open)?-(?P<a>\d{1,3})"
                      r"(?:x(?P<b>\d{1,3}))?$")


def molecule_goal(name: str, *, max_depth: int = DEFAULT_MAX_DEPTH, allowed_gates=DEFAULT_ALLOWED_GATES) -> Goal:
    """A committed molecule: exact energy in its electron sector, checked against the recorded PySCF FCI energy."""
    data = molecule_data(name)
    max_depth, allowed_gates = check_limits(max_depth, allowed_gates)
    particles = data.get("num_particles")
    return checked(Goal(
        name=name,
        description=data["description"],
        hamiltonian=molecule_hamiltonian(name),
        num_qubits=data["num_qubits"],
        max_depth=max_depth,
        allowed_gates=allowed_gates,
        kind="molecule",
        provenance={**data["provenance"], "nuclear_repulsion": data["nuclear_repulsion"],
                    **{k: data[k] for k in ("reference_method", "hartree_fock_energy", "curve") if k in data}},
        reference_energy=data["fci_energy_pyscf"],
        num_particles=None if particles is None else tuple(particles),
    ))


def builtin_names() -> list[str]:
    """Name patterns for listings (any size in range is accepted for families)."""
    names = []
    for f, fam in FAMILIES.items():
        size = "L" if fam.qubits_per_site > 1 else "N"
        names += [f"{f}-{size}", f"{f}-open-{size}"]
        if fam.geometries:
            names += [f"{f}-RxC", f"{f}-open-RxC", f"{f}-ladder-C", f"{f}-ladder-open-C"]
    return names + molecule_names()


def _lattice_from_name(match: re.Match, limits: dict) -> Goal:
    """The lattice goal a parsed name describes (sizes in sites, converted to qubits)."""
    family, a, b = match["family"], int(match["a"]), match["b"]
    fam = FAMILIES[family]
    params: dict = {"periodic": not match["open"]}
    if match["ladder"] or b is not None:
        if not fam.geometries:
            raise GoalError(f"family '{family}' is defined on chains only; use {family}-N or {family}-open-N")
        if match["ladder"] and b is not None:
            raise GoalError(f"a ladder is named by its rungs, e.g. {family}-ladder-4, not '{match[0]}'")
        rows, cols = (2, a) if match["ladder"] else (a, int(b))
        if rows < 2 or cols < 2:
            raise GoalError(f"a square lattice needs at least 2 rows and 2 columns, got {rows}x{cols}")
        params.update(rows=rows, ladder=bool(match["ladder"]))
        sites = rows * cols
    else:
        sites = a
    return lattice_goal(family, sites * fam.qubits_per_site, params=params, **limits)


def builtin_goal(name: str, **limits) -> Goal:
    """A built-in goal by name: a lattice family at a size, a committed molecule, or a goal set of built-in names
    (``tfim-4+6+8``, ``h2-curve``). ``limits``: ``max_depth`` and/or ``allowed_gates``. Goal files by path:
    ``files.get_goal``."""
    if not isinstance(name, str) or not name.strip():
        raise GoalError(f"goal name must be a non-empty string; valid names: {', '.join(builtin_names())}")
    name = name.strip()
    if "+" in name or name.lower().endswith("-curve"):
        from .goal_set import curve_names, goal_set, member_names

        names = curve_names(name.lower(), molecule_names()) if "+" not in name else member_names(name)
        return goal_set([builtin_goal(m, **limits) for m in names], name=name)
    lowered = name.lower()
    if lowered in molecule_names():
        return molecule_goal(lowered, **limits)
    match = _NAME_RE.match(lowered)
    if match and match["family"] in FAMILIES:
        return _lattice_from_name(match, limits)
    raise GoalError(
        f"unknown goal '{name}'. Valid: {', '.join(builtin_names())} (N = number of qubits, e.g. tfim-8; L sites; "
        f"R rows x C columns, e.g. tfim-3x3; C rungs), a goal set such as tfim-4+6+8, or a path to a goal YAML file"
    )
