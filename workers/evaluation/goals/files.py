"""User-defined goals from YAML, validated with errors that name the bad field.

Two shapes, one goal per mapping; a file holds one mapping or ``goals: [ ... ]``::

    # an explicit Pauli sum (labels in Qiskit order, or sparse "Z0 Z1" terms)
    name: my-ising-3
    description: three spins with a field
    num_qubits: 3
    pauli_terms:
      - ["ZZI", -1.0]
      - {pauli: "Z0 Z2", coeff: -1.0}
      - ["X1", -0.5]
    max_depth: 30              # optional, default 50
    allowed_gates: [ry, cz]    # optional, default rx, ry, rz, h, x, cx, cz, rzz
    reference_energy: -2.5     # optional: checked against the eigensolver when the goal is loaded
    num_particles: [1, 1]      # optional, fermionic goals: [spin up, spin down] electrons (spin up on the lower
                               # half of the qubits); the exact energy is the lowest in that sector

    # a family with parameters
    name: xxz-strong-6
    family: xxz
    num_qubits: 6
    params: {delta: 2.0, periodic: false}
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any

import numpy as np
import yaml
from qiskit.quantum_info import SparsePauliOp

from ..errors import EvaluationError, GoalError
from .catalog import builtin_goal, builtin_names
from .goal import (
    DEFAULT_ALLOWED_GATES,
    DEFAULT_MAX_DEPTH,
    Goal,
    check_limits,
    checked,
    is_valid_goal_name,
    lattice_goal,
)
from .goal_set import goal_set
from .hamiltonians import FAMILIES
from .hardware_options import hardware_options

MAX_PAULI_QUBITS = 20
MAX_TERMS = 100_000
_SPARSE_TOKEN = re.compile(r"^([IXYZ])(\d+)$")
_KNOWN_KEYS = {"name", "description", "num_qubits", "pauli_terms", "family", "params", "max_depth",
               "allowed_gates", "kind", "provenance", "reference_energy", "hamiltonian", "num_particles", "hardware",
               "members", "extrapolate_to"}


def _term_label(raw: Any, n: int, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise GoalError(f"{where}: pauli must be a string such as 'ZZI' or 'Z0 Z1', got {raw!r}")
    text = raw.strip().upper()
    if re.fullmatch(r"[IXYZ]+", text) and (len(text) == n or not re.search(r"\d", text)):
        if len(text) != n:
            raise GoalError(f"{where}: label '{raw}' has {len(text)} characters but num_qubits is {n}")
        return text
    chars = ["I"] * n
    for token in text.replace("*", " ").split():
        m = _SPARSE_TOKEN.match(token)
        if not m:
            raise GoalError(f"{where}: cannot read '{token}' in '{raw}'; use a full label like 'ZZI' "
                            f"or sparse terms like 'Z0 Z1' (Pauli letter + qubit index)")
        q = int(m[2])
        if q >= n:
            raise GoalError(f"{where}: qubit index {q} in '{raw}' is out of range for num_qubits = {n}")
        if chars[n - 1 - q] != "I":
            raise GoalError(f"{where}: qubit {q} appears twice in '{raw}'")
        chars[n - 1 - q] = m[1]
    return "".join(chars)


def _term(raw: Any, n: int, where: str) -> tuple[str, float]:
    if isinstance(raw, dict):
        extra = set(raw) - {"pauli", "coeff"}
        if extra or "pauli" not in raw or "coeff" not in raw:
            raise GoalError(f"{where}: a term mapping needs exactly the keys 'pauli' and 'coeff', got {sorted(raw)}")
        label, coeff = raw["pauli"], raw["coeff"]
    elif isinstance(raw, (list, tuple)) and len(raw) == 2:
        label, coeff = raw
    else:
        raise GoalError(f"{where}: a term is [pauli, coeff] or {{pauli: ..., coeff: ...}}, got {raw!r}")
    if isinstance(coeff, bool) or not isinstance(coeff, (int, float)) or not np.isfinite(coeff):
        raise GoalError(f"{where}: coeff must be a finite real number, got {coeff!r}")
    return _term_label(label, n, where), float(coeff)


def goal_from_mapping(data: Any, *, source: str = "goal file") -> Goal:
    """Validate one goal mapping (from YAML or a stored spec) and build the Goal."""
    goal = _goal_set(data, source) if isinstance(data, dict) and "members" in data else _goal_physics(data, source)
    hardware = hardware_options(data.get("hardware"), where=f"{source} goal '{goal.name}'")
    return goal if hardware is None else dataclasses.replace(goal, hardware=hardware)


def _goal_set(data: dict, source: str) -> Goal:
    """A goal set: ``members`` (built-in names or goal mappings) and an optional ``extrapolate_to``."""
    name = data.get("name")
    if not isinstance(name, str) or not is_valid_goal_name(name):
        raise GoalError(f"{source}: a goal set's 'name' must be 1-64 characters of letters, digits, '_', '.', "
                        f"'+', '-', got {name!r}")
    where = f"{source} goal set '{name}'"
    raw = data["members"]
    if not isinstance(raw, list) or not raw:
        raise GoalError(f"{where}: 'members' must be a list of goal names or goal mappings")
    limits = {k: data[k] for k in ("max_depth", "allowed_gates") if k in data}
    members = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            member = get_goal(item)
        elif isinstance(item, dict):
            member = goal_from_mapping(item, source=f"{where}, members[{i}]")
        else:
            raise GoalError(f"{where}: members[{i}] must be a goal name or a goal mapping, got {item!r}")
        if limits and i == 0:
            md, ag = check_limits(limits.get("max_depth", member.max_depth),
                                  limits.get("allowed_gates", member.allowed_gates), where=where)
            member = dataclasses.replace(member, max_depth=md, allowed_gates=ag)
        members.append(member)
    description = data.get("description")
    try:
        return goal_set(members, name=name, extrapolate_to=data.get("extrapolate_to"),
                        description=description if isinstance(description, str) and
                        not description.startswith("A goal set: ") else None)
    except GoalError as exc:
        raise GoalError(f"{where}: {exc}") from None


def _goal_physics(data: Any, source: str) -> Goal:
    """The goal of one mapping without its optional stages."""
    if not isinstance(data, dict):
        raise GoalError(f"{source}: a goal must be a mapping with at least 'name' and 'num_qubits', got {data!r}")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise GoalError(f"{source}: unknown field(s) {unknown}; valid fields: {sorted(_KNOWN_KEYS - {'kind'})}")
    name = data.get("name")
    if not isinstance(name, str) or not is_valid_goal_name(name):
        raise GoalError(f"{source}: field 'name' must be 1-64 characters of letters, digits, '_', '.', '+', '-', "
                        f"got {name!r}")
    where = f"{source} goal '{name}'"
    n = data.get("num_qubits")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise GoalError(f"{where}: field 'num_qubits' must be a positive integer, got {n!r}")
    max_depth, allowed = check_limits(data.get("max_depth", DEFAULT_MAX_DEPTH),
                                      data.get("allowed_gates", list(DEFAULT_ALLOWED_GATES)), where=where)
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise GoalError(f"{where}: field 'description' must be text, got {description!r}")
    family = data.get("family")
    kind = data.get("kind")
    if family is not None and kind in (None, "lattice"):
        if family not in FAMILIES:
            raise GoalError(f"{where}: field 'family' must be one of {sorted(FAMILIES)}, got {family!r}")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise GoalError(f"{where}: field 'params' must be a mapping such as {{J: 1.0}}, got {params!r}")
        try:
            goal = lattice_goal(family, n, params=params, name=name, max_depth=max_depth, allowed_gates=allowed,
                                description=description)
        except GoalError as exc:
            raise GoalError(f"{where}: {exc}") from None
        return goal
    return _pauli_goal(data, where=where, source=source, limits=(max_depth, allowed), description=description)


def _pauli_goal(data: dict, *, where: str, source: str, limits: tuple[int, tuple[str, ...]],
                description: str | None) -> Goal:
    """A goal from an explicit Pauli list, its declared sector and reference checked against the eigensolver."""
    name, n, kind = data["name"], data["num_qubits"], data.get("kind")
    max_depth, allowed = limits
    terms_raw = data.get("pauli_terms", data.get("hamiltonian"))
    if terms_raw is None:
        raise GoalError(f"{where}: give either 'family' (one of {sorted(FAMILIES)}) or 'pauli_terms'")
    if n > MAX_PAULI_QUBITS:
        raise GoalError(f"{where}: num_qubits is {n}; at most {MAX_PAULI_QUBITS} are supported (exact energies)")
    if not isinstance(terms_raw, list) or not terms_raw:
        raise GoalError(f"{where}: field 'pauli_terms' must be a non-empty list of [pauli, coeff] terms")
    if len(terms_raw) > MAX_TERMS:
        raise GoalError(f"{where}: {len(terms_raw)} terms; at most {MAX_TERMS} are supported")
    terms = [_term(t, n, f"{where}, pauli_terms[{i}]") for i, t in enumerate(terms_raw)]
    hamiltonian = SparsePauliOp.from_list(terms).simplify(atol=1e-14)
    if np.all(np.abs(hamiltonian.coeffs) < 1e-14):
        raise GoalError(f"{where}: the Pauli terms cancel to zero; the Hamiltonian is empty")
    reference = data.get("reference_energy")
    if reference is not None and (isinstance(reference, bool) or not isinstance(reference, (int, float))):
        raise GoalError(f"{where}: field 'reference_energy' must be a number, got {reference!r}")
    provenance = data.get("provenance") or {"source": source}
    if kind not in (None, "pauli", "molecule"):
        raise GoalError(f"{where}: field 'kind' must be 'pauli', 'molecule' or 'lattice', got {kind!r}")
    try:
        goal = Goal(
            name=name,
            description=description or f"Ground state of a user-defined {n}-qubit Hamiltonian ({len(terms)} terms).",
            hamiltonian=hamiltonian,
            num_qubits=n,
            max_depth=max_depth,
            allowed_gates=allowed,
            kind=kind or "pauli",
            provenance=provenance,
            reference_energy=None if reference is None else float(reference),
            num_particles=data.get("num_particles"),
        )
        checked(goal)
    except EvaluationError as exc:
        raise GoalError(f"{where}: {exc}") from None
    return goal


def load_goal_file(path: str | pathlib.Path) -> list[Goal]:
    """All goals in a YAML file; errors name the file, the goal and the field."""
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise GoalError(f"cannot read goal file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GoalError(f"{path} is not valid YAML: {exc}") from None
    if isinstance(data, dict) and "goals" in data:
        if set(data) != {"goals"} or not isinstance(data["goals"], list) or not data["goals"]:
            raise GoalError(f"{path}: 'goals' must be the only top-level key and hold a non-empty list")
        items = data["goals"]
    else:
        items = [data]
    goals = [goal_from_mapping(item, source=str(path)) for item in items]
    names = [g.name for g in goals]
    dupes = sorted({x for x in names if names.count(x) > 1})
    if dupes:
        raise GoalError(f"{path}: goal name(s) {dupes} appear more than once")
    for goal in goals:
        goal.provenance.setdefault("file", str(path))
    return goals


def goal_from_spec(spec: dict[str, Any]) -> Goal:
    """Rebuild a goal from ``Goal.to_spec`` output (validated like a user file)."""
    return goal_from_mapping(spec, source="spec")


def get_goal(name: str, *, max_depth: int | None = None, allowed_gates=None) -> Goal:
    """A built-in goal by name (``catalog.builtin_goal``), or the goal of a YAML file path (exactly one goal expected);
    ``max_depth`` / ``allowed_gates`` replace the goal's own limits."""
    if not isinstance(name, str) or not name.strip():
        raise GoalError(f"goal name must be a non-empty string; valid names: {', '.join(builtin_names())}")
    name = name.strip()
    limits = {k: v for k, v in (("max_depth", max_depth), ("allowed_gates", allowed_gates)) if v is not None}
    if not name.endswith((".yaml", ".yml")):
        return builtin_goal(name, **limits)
    goals = load_goal_file(name)
    if len(goals) != 1:
        raise GoalError(f"{name} defines {len(goals)} goals; name one of them: {[g.name for g in goals]}")
    goal = goals[0]
    if limits:
        md, ag = check_limits(limits.get("max_depth", goal.max_depth), limits.get("allowed_gates", goal.allowed_gates))
        goal = dataclasses.replace(goal, max_depth=md, allowed_gates=ag)
    return goal
