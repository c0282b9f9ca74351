"""Built-in goals by name (lattice families at any size, committed molecules) and goal files by path.

Built-in names: ``tfim-N``, ``tfim-open-N``, ``heisenberg-N``, ``xxz-N``, ``xy-N`` (any family also as
``<family>-open-N``), ``h2`` and ``lih``. User goals come from YAML (see ``files.py``).
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import GoalError
from .goal import DEFAULT_ALLOWED_GATES, DEFAULT_MAX_DEPTH, Goal, check_limits, lattice_goal
from .hamiltonians import FAMILIES, molecule_data, molecule_hamiltonian, molecule_names

_NAME_RE = re.compile(r"^(?P<family>[a-z]+)(?P<open>-open)?-(?P<n>\d+)$")


def molecule_goal(name: str, *, max_depth: int = DEFAULT_MAX_DEPTH, allowed_gates=DEFAULT_ALLOWED_GATES) -> Goal:
    data = molecule_data(name)
    max_depth, allowed_gates = check_limits(max_depth, allowed_gates)
    return Goal(
        name=name,
        description=data["description"],
        hamiltonian=molecule_hamiltonian(name),
        num_qubits=data["num_qubits"],
        max_depth=max_depth,
        allowed_gates=allowed_gates,
        kind="molecule",
        provenance={**data["provenance"], "nuclear_repulsion": data["nuclear_repulsion"]},
        reference_energy=data["fci_energy_pyscf"],
    )


def builtin_names() -> list[str]:
    """Example built-in names for listings (any size in range is accepted for families)."""
    return [f"{f}-N" for f in FAMILIES] + [f"{f}-open-N" for f in FAMILIES] + molecule_names()


def get_goal(name: str, *, max_depth: int | None = None, allowed_gates=None) -> Goal:
    """A built-in goal by name, or the goal(s) of a YAML file path (exactly one goal expected)."""
    if not isinstance(name, str) or not name.strip():
        raise GoalError(f"goal name must be a non-empty string; valid names: {', '.join(builtin_names())}")
    name = name.strip()
    limits = {}
    if max_depth is not None:
        limits["max_depth"] = max_depth
    if allowed_gates is not None:
        limits["allowed_gates"] = allowed_gates
    if name.endswith((".yaml", ".yml")):
        from .files import load_goal_file

        goals = load_goal_file(name)
        if len(goals) != 1:
            raise GoalError(f"{name} defines {len(goals)} goals; name one of them: {[g.name for g in goals]}")
        goal = goals[0]
        if limits:
            md, ag = check_limits(limits.get("max_depth", goal.max_depth),
                                  limits.get("allowed_gates", goal.allowed_gates))
            goal = dataclasses.replace(goal, max_depth=md, allowed_gates=ag)
        return goal
    lowered = name.lower()
    if lowered in molecule_names():
        return molecule_goal(lowered, **limits)
    match = _NAME_RE.match(lowered)
    if match and match["family"] in FAMILIES:
        params = {"periodic": not match["open"]}
        return lattice_goal(match["family"], int(match["n"]), params=params, **limits)
    raise GoalError(
        f"unknown goal '{name}'. Valid: {', '.join(builtin_names())} (N = number of qubits, e.g. tfim-8), "
        f"or a path to a goal YAML file"
    )
