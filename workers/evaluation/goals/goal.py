"""The Goal: a Hamiltonian and the limits a candidate must respect; lattice goals at any size.

A goal is a Hamiltonian on ``num_qubits`` qubits plus the limits the candidate must respect (``max_depth``,
``allowed_gates``). Goals round-trip through a JSON *spec* (``Goal.to_spec`` / ``files.goal_from_spec``), which is
what the store keeps and what the queue carries, so a worker on another host rebuilds exactly the goal the loop
meant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

import numpy as np
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import SparsePauliOp

from ..errors import GoalError
from . import exact
from .hamiltonians import FAMILIES, MAX_LATTICE_QUBITS

DEFAULT_MAX_DEPTH = 50
DEFAULT_ALLOWED_GATES: tuple[str, ...] = ("rx", "ry", "rz", "h", "x", "cx", "cz", "rzz")
CHEMICAL_ACCURACY = 1.6e-3  # Hartree
_GOAL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


def known_gate_names() -> set[str]:
    """Every standard gate name Qiskit knows (plus ``measure``/``barrier``, which are never allowed)."""
    return set(get_standard_gate_name_mapping()) - {"measure", "barrier", "delay", "reset"}


@dataclasses.dataclass(frozen=True, eq=False)
class Goal:
    """A Hamiltonian to minimise and the limits a candidate ansatz must respect."""

    name: str
    """Unique name, e.g. ``tfim-8`` or a user goal's own name."""
    description: str
    """One paragraph on the physics, used in prompts."""
    hamiltonian: SparsePauliOp
    """The qubit Hamiltonian (Qiskit order: qubit 0 is the rightmost label character)."""
    num_qubits: int
    """Width every candidate circuit must have."""
    max_depth: int = DEFAULT_MAX_DEPTH
    """Largest allowed circuit depth (``QuantumCircuit.depth()``)."""
    allowed_gates: tuple[str, ...] = DEFAULT_ALLOWED_GATES
    """Gate names a candidate may use."""
    kind: str = "pauli"
    """``lattice``, ``molecule`` or ``pauli`` (a user's explicit Pauli list)."""
    family: str | None = None
    """The lattice family (``tfim``, ``heisenberg``, ...) or ``None``."""
    params: dict = dataclasses.field(default_factory=dict)
    """Family parameters (J, h, delta, periodic) for lattice goals."""
    provenance: dict = dataclasses.field(default_factory=dict)
    """Where the Hamiltonian came from (geometry, basis, mapping, versions, file)."""
    reference_energy: float | None = None
    """A published or committed reference ground energy, checked against the eigensolver when present."""

    # ---- derived -------------------------------------------------------------------------------------------
    @property
    def exact_energy(self) -> float:
        """Lowest eigenvalue of the Hamiltonian over the whole qubit space (the variational bound); cached."""
        return exact.ground_energy(self.hamiltonian)

    @property
    def is_molecule(self) -> bool:
        return self.kind == "molecule"

    @property
    def is_lattice(self) -> bool:
        return self.kind == "lattice"

    @property
    def min_qubits(self) -> int:
        if not self.is_lattice:
            return self.num_qubits
        return FAMILIES[self.family].min_qubits(bool(self.params.get("periodic", True)))

    def at_size(self, num_qubits: int) -> "Goal":
        """The same lattice goal at another size (same parameters and limits). Fixed-size goals refuse."""
        if not self.is_lattice:
            raise GoalError(f"goal '{self.name}' has a fixed size ({self.num_qubits} qubits); it cannot be resized")
        params = {k: v for k, v in self.params.items()}
        goal = lattice_goal(self.family, num_qubits, params=params, max_depth=self.max_depth,
                            allowed_gates=self.allowed_gates)
        if self.name != _builtin_lattice_name(self.family, self.num_qubits, self.params):
            goal = dataclasses.replace(goal, name=f"{self.name}@{num_qubits}")
        return goal

    def pauli_terms(self) -> list[tuple[str, float]]:
        """(label, real coefficient) pairs of the Hamiltonian."""
        return [(label, float(np.real(c))) for label, c in self.hamiltonian.to_list()]

    def pauli_sum_text(self, max_terms: int = 24) -> str:
        """A readable sum such as ``-1.0 Z0 Z1 - 1.0 X0 ...``, shortened with a count beyond ``max_terms``."""
        terms = sorted(self.hamiltonian.to_sparse_list(), key=lambda t: -abs(t[2]))
        shown = []
        for paulis, qubits, coeff in terms[:max_terms]:
            ops = " ".join(f"{p}{q}" for p, q in sorted(zip(paulis, qubits), key=lambda pq: pq[1])) or "I"
            shown.append((float(np.real(coeff)), ops))
        text = ""
        for i, (c, ops) in enumerate(shown):
            sign = ("-" if c < 0 else "") if i == 0 else (" - " if c < 0 else " + ")
            text += f"{sign}{abs(c):.6g} {ops}"
        if len(terms) > max_terms:
            text += f" ... (+{len(terms) - max_terms} more terms, {len(terms)} in total)"
        return text.strip()

    # ---- serialisation -------------------------------------------------------------------------------------
    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready snapshot: enough to rebuild this exact goal on another host."""
        return {
            "name": self.name,
            "description": self.description,
            "num_qubits": self.num_qubits,
            "kind": self.kind,
            "family": self.family,
            "params": dict(self.params),
            "pauli_terms": [[label, coeff] for label, coeff in self.pauli_terms()],
            "max_depth": self.max_depth,
            "allowed_gates": list(self.allowed_gates),
            "provenance": dict(self.provenance),
            "reference_energy": self.reference_energy,
        }

    @property
    def spec_hash(self) -> str:
        """sha256 of the spec's physics and limits (not the description): equal hashes mean the same task."""
        spec = self.to_spec()
        core = {k: spec[k] for k in ("num_qubits", "pauli_terms", "max_depth", "allowed_gates")}
        core["pauli_terms"] = sorted([label, round(c, 12)] for label, c in core["pauli_terms"])
        core["allowed_gates"] = sorted(core["allowed_gates"])
        return hashlib.sha256(json.dumps(core, separators=(",", ":")).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """The fields ``qmind goals show --json`` prints."""
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "family": self.family,
            "params": dict(self.params),
            "num_qubits": self.num_qubits,
            "num_terms": len(self.hamiltonian),
            "exact_energy": self.exact_energy,
            "reference_energy": self.reference_energy,
            "max_depth": self.max_depth,
            "allowed_gates": list(self.allowed_gates),
            "resizable": self.is_lattice,
            "hamiltonian": self.pauli_sum_text(),
            "provenance": dict(self.provenance),
        }


def check_limits(max_depth: Any, allowed_gates: Any, *, where: str = "goal") -> tuple[int, tuple[str, ...]]:
    """Validate ``max_depth`` and ``allowed_gates``; errors name the field and list what is valid."""
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
        raise GoalError(f"{where}: max_depth must be a positive integer, got {max_depth!r}")
    if isinstance(allowed_gates, str):
        allowed_gates = [g.strip() for g in allowed_gates.split(",") if g.strip()]
    if not isinstance(allowed_gates, (list, tuple)) or not allowed_gates:
        raise GoalError(f"{where}: allowed_gates must be a non-empty list of gate names, got {allowed_gates!r}")
    known = known_gate_names()
    bad = [g for g in allowed_gates if not isinstance(g, str) or g.lower() not in known]
    if bad:
        raise GoalError(f"{where}: allowed_gates has unknown gate name(s) {bad}; known gates: {sorted(known)}")
    gates = tuple(dict.fromkeys(g.lower() for g in allowed_gates))
    return max_depth, gates


_FAMILY_TITLES = {"tfim": "transverse-field Ising model (TFIM)", "heisenberg": "Heisenberg XXX model",
                  "xxz": "XXZ model", "xy": "XY model"}


def _builtin_lattice_name(family: str, n: int, params: dict) -> str:
    return f"{family}{'' if params.get('periodic', True) else '-open'}-{n}"


def lattice_goal(family: str, num_qubits: int, *, params: dict | None = None, name: str | None = None,
                 max_depth: int = DEFAULT_MAX_DEPTH, allowed_gates=DEFAULT_ALLOWED_GATES,
                 description: str | None = None) -> Goal:
    """A goal of a lattice family at ``num_qubits`` sites."""
    if family not in FAMILIES:
        raise GoalError(f"unknown family '{family}'; families: {sorted(FAMILIES)}")
    fam = FAMILIES[family]
    merged = fam.check_params(params or {})
    periodic = merged["periodic"]
    if isinstance(num_qubits, bool) or not isinstance(num_qubits, int):
        raise GoalError(f"num_qubits must be an integer, got {num_qubits!r}")
    lo = fam.min_qubits(periodic)
    if not lo <= num_qubits <= MAX_LATTICE_QUBITS:
        raise GoalError(
            f"{family}{'' if periodic else '-open'} needs between {lo} and {MAX_LATTICE_QUBITS} qubits, "
            f"got {num_qubits}"
        )
    max_depth, allowed_gates = check_limits(max_depth, allowed_gates)
    values = ", ".join(f"{k} = {v:g}" for k, v in merged.items() if k != "periodic")
    boundary = "periodic (ring)" if periodic else "open"
    desc = description or (
        f"Ground state of the {_FAMILY_TITLES[family]} on a {boundary} chain of {num_qubits} spins: {fam.formula}, with {values}. {fam.symmetry}"
    )
    build_params = {k: v for k, v in merged.items()}
    return Goal(
        name=name or _builtin_lattice_name(family, num_qubits, merged),
        description=desc,
        hamiltonian=fam.build(num_qubits, **build_params),
        num_qubits=num_qubits,
        max_depth=max_depth,
        allowed_gates=allowed_gates,
        kind="lattice",
        family=family,
        params=merged,
        provenance={"source": "built-in family", "family": family, "params": merged},
    )


def is_valid_goal_name(name: str) -> bool:
    return bool(_GOAL_NAME_RE.match(name))
