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
from .hamiltonians import FAMILIES
from .hardware_options import HardwareOptions

DEFAULT_MAX_DEPTH = 50
DEFAULT_ALLOWED_GATES: tuple[str, ...] = ("rx", "ry", "rz", "h", "x", "cx", "cz", "rzz")
CHEMICAL_ACCURACY = 1.6e-3  # Hartree
FULL_SPACE_SUMMARY_QUBITS = 16
"""``summary()`` compares a sector goal's energy with the whole space's minimum up to this many qubits."""
LABEL_ORDER = ("Qiskit little-endian: the rightmost character of a label acts on qubit 0; coefficients are real "
               "(the imaginary parts of a Hermitian Pauli sum are zero)")
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
    """A published or committed reference ground energy, checked against the eigensolver when the goal is built."""
    num_particles: tuple[int, int] | None = None
    """(spin-up, spin-down) electron numbers for fermionic goals (spin up on the lower half of the qubits, Jordan-
    Wigner); the exact energy is the lowest in that sector. ``None``: the whole qubit space."""
    hardware: HardwareOptions | None = None
    """Also score on a fake IBM device (routed gates, noisy energy); None = noiseless scoring only."""
    members: tuple = ()
    """A goal set's member goals (``goal_set.py``): one program is scored on every one; this goal's own
    Hamiltonian and size are the first member's. Empty for a single goal."""
    extrapolate_to: int | None = None
    """A lattice set's held-out size: the program is also scored there and reported, never paid."""

    # ---- derived -------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        if self.num_particles is not None:
            object.__setattr__(self, "num_particles", check_sector(self.num_particles, self.num_qubits))

    @property
    def exact_energy(self) -> float:
        """Lowest eigenvalue of the Hamiltonian in the goal's particle sector (whole space without one); cached."""
        return exact.ground_energy(self.hamiltonian, sector=self.num_particles)

    @property
    def full_space_energy(self) -> float:
        """Lowest eigenvalue over the whole qubit space (below ``exact_energy`` when another sector lies lower)."""
        return exact.ground_energy(self.hamiltonian)

    def check_reference(self, *, atol: float = 1e-6) -> None:
        """Raise a GoalError when ``reference_energy`` disagrees with the eigensolver by more than ``atol``."""
        if self.reference_energy is None:
            return
        energy = self.exact_energy
        if not abs(energy - self.reference_energy) <= atol + 1e-9 * abs(energy):
            where = "the whole qubit space" if self.num_particles is None else f"sector {list(self.num_particles)}"
            raise GoalError(
                f"goal '{self.name}': stated reference energy {self.reference_energy!r} does not match the "
                f"eigensolver's ground energy {energy!r} in {where} (difference {self.reference_energy - energy:.3e},"
                f" tolerance {atol:g}); the Hamiltonian, its sector or the reference is wrong"
            )

    @property
    def is_molecule(self) -> bool:
        return self.kind == "molecule"

    @property
    def is_lattice(self) -> bool:
        return self.kind == "lattice"

    @property
    def is_set(self) -> bool:
        return bool(self.members)

    @property
    def min_qubits(self) -> int:
        if not self.is_lattice:
            return self.num_qubits
        return FAMILIES[self.family].min_qubits(bool(self.params.get("periodic", True)), self.params.get("rows", 1))

    def at_size(self, num_qubits: int) -> Goal:
        """The same lattice goal at another size (same parameters, width and limits). Fixed-size goals refuse."""
        if not self.is_lattice:
            raise GoalError(f"goal '{self.name}' has a fixed size ({self.num_qubits} qubits); it cannot be resized")
        params = {k: v for k, v in self.params.items()}
        goal = lattice_goal(self.family, num_qubits, params=params, max_depth=self.max_depth,
                            allowed_gates=self.allowed_gates)
        goal = dataclasses.replace(goal, hardware=self.hardware)
        if self.name != _builtin_lattice_name(self.family, self.num_qubits, self.params):
            goal = dataclasses.replace(goal, name=f"{self.name}@{num_qubits}")
        return goal

    def family_sizes(self, *, max_qubits: int = 12, count: int = 3) -> list[int]:
        """Qubit counts of the family members a size-scaling check (the barren-plateau fit) builds, ascending.

        Lattices keep their width and step by two sites on chains (an ansatz for even or odd n stays valid) or by
        one column on square lattices and ladders: the goal's size and the ``count - 1`` next smaller ones (at
        least the family's smallest), extended upward when too few. Sizes above ``max_qubits`` are replaced by the
        largest allowed ones (a 20-qubit chain is assessed at 8, 10, 12), and the upward extension stops there
        (fermionic families at 12 qubits) once two sizes are found. ``at_size`` accepts every size returned.
        Fixed-size goals: just their own size.
        """
        n = self.num_qubits
        if not self.is_lattice:
            return [n]
        fam, rows = FAMILIES[self.family], self.params.get("rows", 1)
        step = fam.qubit_step(rows) * (2 if rows == 1 else 1)
        cap = min(max_qubits, 12) if fam.qubits_per_site > 1 else max_qubits
        floor = max(self.min_qubits, 4)
        top = n if n <= cap else n - step * -((cap - n) // step)
        top = top if top >= floor else n
        sizes = [top] + [m for m in (top - k * step for k in range(1, count)) if m >= floor]
        while len(sizes) < count and max(sizes) + step <= max(cap, n):
            sizes.append(max(sizes) + step)
        while len(sizes) < 2:
            sizes.append(max(sizes) + step)
        return sorted(sizes)

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
        spec = {
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
            "num_particles": None if self.num_particles is None else list(self.num_particles),
        }
        if self.hardware is not None:  # only when set: noiseless goals keep their specs and hashes
            spec["hardware"] = self.hardware.to_dict()
        if self.members:
            spec["members"] = [m.to_spec() for m in self.members]
            spec["extrapolate_to"] = self.extrapolate_to
        return spec

    @property
    def spec_hash(self) -> str:
        """sha256 of the spec's physics and limits (not the description): equal hashes mean the same task."""
        spec = self.to_spec()
        core = {k: spec[k] for k in ("num_qubits", "pauli_terms", "max_depth", "allowed_gates")}
        core["pauli_terms"] = sorted([label, round(c, 12)] for label, c in core["pauli_terms"])
        core["allowed_gates"] = sorted(core["allowed_gates"])
        if self.num_particles is not None:  # the sector changes the task; goals without one keep their old hashes
            core["num_particles"] = list(self.num_particles)
        if "hardware" in spec:
            core["hardware"] = spec["hardware"]
        if self.members:
            core["members"] = [m.spec_hash for m in self.members]
            core["extrapolate_to"] = self.extrapolate_to
        return hashlib.sha256(json.dumps(core, separators=(",", ":")).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """The fields ``qmind goals show --json`` prints: the whole Hamiltonian at full precision in
        ``pauli_terms`` (``label_order`` says how to read a label), the readable ``hamiltonian`` text for people."""
        out = {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "family": self.family,
            "params": dict(self.params),
            "num_qubits": self.num_qubits,
            "num_particles": None if self.num_particles is None else list(self.num_particles),
            "num_terms": len(self.hamiltonian),
            "exact_energy": self.exact_energy,
            "exact_energy_sector": "whole qubit space" if self.num_particles is None else
            f"{self.num_particles[0]} spin-up + {self.num_particles[1]} spin-down electrons",
            "reference_energy": self.reference_energy,
            "max_depth": self.max_depth,
            "allowed_gates": list(self.allowed_gates),
            "resizable": self.is_lattice,
            "family_sizes": self.family_sizes(),
            "hamiltonian": self.pauli_sum_text(),
            "label_order": LABEL_ORDER,
            "pauli_terms": [[label, coeff] for label, coeff in self.pauli_terms()],
            "provenance": dict(self.provenance),
            "hardware": None if self.hardware is None else self.hardware.to_dict(),
            "members": [m.name for m in self.members],
            "extrapolate_to": self.extrapolate_to,
        }
        if self.num_particles is not None and self.num_qubits > FULL_SPACE_SUMMARY_QUBITS:
            out["full_space_energy"] = None
            out["full_space_note"] = (f"the whole-space minimum is not computed above {FULL_SPACE_SUMMARY_QUBITS} "
                                      "qubits (a 2^n sparse matrix); the sector's energy is exact")
        elif self.num_particles is not None:
            full = self.full_space_energy
            out["full_space_energy"] = full
            out["full_space_note"] = (
                f"the whole qubit space has a lower minimum ({full:.10f}, {out['exact_energy'] - full:.3e} below) "
                "in another particle sector; candidates are scored against the sector's energy"
                if full < out["exact_energy"] - 1e-9 else "the sector holds the whole space's minimum")
        return out


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
                  "xxz": "XXZ model", "xy": "XY model", "j1j2": "J1-J2 Heisenberg model",
                  "hubbard": "Fermi-Hubbard model"}


def _builtin_lattice_name(family: str, n: int, params: dict) -> str:
    """``tfim-8``, ``tfim-open-3x3``, ``heisenberg-ladder-open-4``, ``hubbard-4`` (Hubbard chains count sites)."""
    sites, rows = n // FAMILIES[family].qubits_per_site, params.get("rows", 1)
    boundary = "" if params.get("periodic", True) else "-open"
    if params.get("ladder"):
        return f"{family}-ladder{boundary}-{sites // 2}"
    if rows > 1:
        return f"{family}{boundary}-{rows}x{sites // rows}"
    return f"{family}{boundary}-{sites}"


def half_filling(family: str, num_qubits: int) -> tuple[int, int] | None:
    """(spin up, spin down) at half filling for fermionic families (one more up than down on odd sites)."""
    if FAMILIES[family].qubits_per_site == 1:
        return None
    sites = num_qubits // 2
    return (sites + 1) // 2, sites // 2


def lattice_goal(family: str, num_qubits: int, *, params: dict | None = None, name: str | None = None,
                 max_depth: int = DEFAULT_MAX_DEPTH, allowed_gates=DEFAULT_ALLOWED_GATES,
                 description: str | None = None) -> Goal:
    """A goal of a lattice family at ``num_qubits`` qubits (fermionic families: two per site, half filling)."""
    if family not in FAMILIES:
        raise GoalError(f"unknown family '{family}'; families: {sorted(FAMILIES)}")
    fam = FAMILIES[family]
    merged = fam.check_params(params or {})
    fam.check_size(num_qubits, merged)
    max_depth, allowed_gates = check_limits(max_depth, allowed_gates)
    values = ", ".join(f"{k} = {v:g}" for k, v in merged.items() if k not in ("periodic", "rows", "ladder"))
    sector = half_filling(family, num_qubits)
    filling = "" if sector is None else (f" Half filling: {sector[0]} spin-up and {sector[1]} spin-down electrons "
                                         f"(the exact energy is the lowest in that sector).")
    desc = description or (
        f"Ground state of the {_FAMILY_TITLES[family]} on {fam.geometry_text(num_qubits, merged)}: {fam.formula}, "
        f"with {values}. {fam.symmetry}{filling}"
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
        num_particles=sector,
    )


def checked(goal: Goal) -> Goal:
    """``goal`` after checking its declared data against the eigensolver: a particle sector the Hamiltonian
    conserves and a reference energy that matches (GoalError / EvaluationError otherwise)."""
    if goal.num_particles is not None:
        goal.exact_energy  # noqa: B018 - refuses Hamiltonians that leave the sector
    goal.check_reference()
    return goal


def check_sector(num_particles: Any, num_qubits: int) -> tuple[int, int]:
    """Validate (spin up, spin down) electron numbers for ``num_qubits`` spin orbitals (an even number)."""
    ok = (isinstance(num_particles, (list, tuple)) and len(num_particles) == 2
          and all(isinstance(k, int) and not isinstance(k, bool) for k in num_particles))
    if not ok or num_qubits % 2 or not all(0 <= k <= num_qubits // 2 for k in num_particles):
        raise GoalError(
            f"num_particles must be [spin up, spin down], two integers between 0 and num_qubits / 2 with an even "
            f"num_qubits (spin up on the lower half of the qubits), got {num_particles!r} for {num_qubits} qubits"
        )
    return int(num_particles[0]), int(num_particles[1])


def is_valid_goal_name(name: str) -> bool:
    return bool(_GOAL_NAME_RE.match(name))
