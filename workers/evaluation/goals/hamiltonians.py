"""Lattice Hamiltonian families and the committed molecular Hamiltonians.

Qubit order is Qiskit's: qubit 0 is the rightmost character of a Pauli label. Families build a ``SparsePauliOp``
for any size from their parameters; molecules are read from ``data/<name>.json`` (made by
``scripts/generate_molecules.py``), so workers never need PySCF.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
from collections.abc import Callable

from qiskit.quantum_info import SparsePauliOp

from ..errors import GoalError
from .lattices import chain_bonds, hubbard, lattice_bonds, spin_hamiltonian

DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
MAX_LATTICE_QUBITS = 20


def tfim(n: int, *, J: float = 1.0, h: float = 1.0, periodic: bool = True, rows: int = 1,
         ladder: bool = False) -> SparsePauliOp:
    """H = -J sum_<ij> Z_i Z_j - h sum X_i."""
    return spin_hamiltonian(n, lattice_bonds(n, periodic, rows, ladder), {"Z": -J}, {"X": -h})


def xxz(n: int, *, J: float = 1.0, delta: float = 0.5, periodic: bool = True, rows: int = 1,
        ladder: bool = False) -> SparsePauliOp:
    """H = J sum_<ij> (X_i X_j + Y_i Y_j + delta Z_i Z_j)."""
    return spin_hamiltonian(n, lattice_bonds(n, periodic, rows, ladder), {"X": J, "Y": J, "Z": J * delta}, {})


def heisenberg(n: int, *, J: float = 1.0, periodic: bool = True, rows: int = 1, ladder: bool = False) -> SparsePauliOp:
    """H = J sum_<ij> (X_i X_j + Y_i Y_j + Z_i Z_j)."""
    return xxz(n, J=J, delta=1.0, periodic=periodic, rows=rows, ladder=ladder)


def xy(n: int, *, J: float = 1.0, periodic: bool = True, rows: int = 1, ladder: bool = False) -> SparsePauliOp:
    """H = J sum_<ij> (X_i X_j + Y_i Y_j)."""
    return xxz(n, J=J, delta=0.0, periodic=periodic, rows=rows, ladder=ladder)


def j1j2(n: int, *, J1: float = 1.0, J2: float = 0.5, periodic: bool = True) -> SparsePauliOp:
    """H = J1 sum sigma_i . sigma_{i+1} + J2 sum sigma_i . sigma_{i+2} (each bond once)."""
    heis = {"X": 1.0, "Y": 1.0, "Z": 1.0}
    first = spin_hamiltonian(n, chain_bonds(n, periodic), {p: J1 for p in heis}, {})
    second = spin_hamiltonian(n, chain_bonds(n, periodic, distance=2), {p: J2 for p in heis}, {})
    return (first + second).simplify(atol=1e-14)


@dataclasses.dataclass(frozen=True)
class Family:
    """A lattice family: builds its Hamiltonian at any size from named parameters."""

    name: str
    build: Callable[..., SparsePauliOp]
    defaults: dict
    formula: str
    """The Hamiltonian as a formula, for descriptions and prompts."""
    symmetry: str
    """A sentence on the model's symmetries, for descriptions and prompts."""
    geometries: bool = True
    """Whether ``rows`` (square lattices) and ``ladder`` (two-leg ladders) are accepted; else chains only."""
    qubits_per_site: int = 1
    """2 for spinful fermions (Jordan-Wigner: spin up on the lower half of the qubits)."""
    min_ring: int = 3
    """Fewest sites of a periodic chain."""

    def min_qubits(self, periodic: bool, rows: int = 1) -> int:
        """Fewest qubits of a lattice of this family: two columns of ``rows``, or a chain."""
        sites = 2 * rows if rows > 1 else (self.min_ring if periodic else 2)
        return sites * self.qubits_per_site

    def qubit_step(self, rows: int = 1) -> int:
        """Qubits per column: sizes of one geometry differ by multiples of this."""
        return rows * self.qubits_per_site

    def check_params(self, params: dict) -> dict:
        """Defaults merged with ``params``, validated; ``rows``/``ladder`` are kept only for 2D geometries."""
        geometry = {"periodic", "rows", "ladder"} if self.geometries else {"periodic"}
        unknown = sorted(set(params) - set(self.defaults) - geometry)
        if unknown:
            raise GoalError(
                f"family '{self.name}' has no parameter(s) {unknown}; valid parameters: "
                f"{sorted(self.defaults) + sorted(geometry)}"
            )
        merged = {**self.defaults, "periodic": True, **params}
        for key, value in merged.items():
            if key in ("periodic", "ladder"):
                if not isinstance(value, bool):
                    raise GoalError(f"family parameter '{key}' must be true or false, got {value!r}")
            elif key == "rows":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
                    raise GoalError(f"family parameter 'rows' must be a positive integer, got {value!r}")
                merged[key] = int(value)
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise GoalError(f"family parameter '{key}' must be a number (finite), got {value!r}")
            else:
                merged[key] = float(value)
        if merged.get("ladder"):
            if merged.setdefault("rows", 2) != 2:
                raise GoalError(f"a two-leg ladder has rows = 2, got rows = {merged['rows']}")
        else:
            merged.pop("ladder", None)
        if merged.get("rows") == 1:
            merged.pop("rows")
        return merged

    def check_size(self, num_qubits: int, params: dict) -> None:
        """Raise a GoalError naming the valid sizes when ``num_qubits`` does not fit this geometry."""
        rows = params.get("rows", 1)
        lo = self.min_qubits(params["periodic"], rows)
        step = self.qubit_step(rows)
        if isinstance(num_qubits, bool) or not isinstance(num_qubits, int):
            raise GoalError(f"num_qubits must be an integer, got {num_qubits!r}")
        if not lo <= num_qubits <= MAX_LATTICE_QUBITS or num_qubits % step:
            shape = "" if rows == 1 else f" with {rows} rows"
            shape += f" ({self.qubits_per_site} qubits per site)" if self.qubits_per_site > 1 else ""
            raise GoalError(
                f"{self.name}{'' if params['periodic'] else '-open'}{shape} needs between {lo} and "
                f"{MAX_LATTICE_QUBITS} qubits in steps of {step}, got {num_qubits}"
            )

    def geometry_text(self, num_qubits: int, params: dict) -> str:
        """``a periodic (ring) chain of 8 sites`` and the like, for descriptions."""
        sites, rows = num_qubits // self.qubits_per_site, params.get("rows", 1)
        periodic = params["periodic"]
        if rows == 1:
            return f"{'a periodic (ring)' if periodic else 'an open'} chain of {sites} sites"
        cols = sites // rows
        numbering = (f"; site (row r, column c) is {'site' if self.qubits_per_site > 1 else 'qubit'} "
                     f"{rows}*c + r, and other sizes of this goal keep the {rows} rows and change the columns")
        if params.get("ladder"):
            return (f"a two-leg ladder of {cols} rungs ({sites} sites), legs {'periodic' if periodic else 'open'}"
                    f"{numbering}")
        boundary = ("periodic (torus) boundaries; a length-2 direction counts its bond twice" if periodic
                    else "open boundaries")
        return f"a {rows}x{cols} square lattice ({sites} sites) with {boundary}{numbering}"


_TFIM_SYM = "Z2 spin-flip symmetry (product of X); critical at h = J on the chain, h ~ 3.04 J on the square lattice."
_HUBBARD_SYM = ("Conserves the number of spin-up and spin-down electrons; the goal's sector is half filling "
                "(num_particles). Jordan-Wigner mapping: the spin-up orbital of site i is qubit i, spin-down is "
                "qubit L + i (L sites), an occupied orbital is |1>.")
FAMILIES: dict[str, Family] = {
    "tfim": Family("tfim", tfim, {"J": 1.0, "h": 1.0}, "H = -J Σ_<ij> Z_i Z_j - h Σ X_i", _TFIM_SYM),
    "heisenberg": Family(
        "heisenberg", heisenberg, {"J": 1.0}, "H = J Σ_<ij> (X_i X_j + Y_i Y_j + Z_i Z_j)",
        "SU(2) spin-rotation symmetry, conserved total magnetisation; antiferromagnetic ground state for J > 0.",
    ),
    "xxz": Family(
        "xxz", xxz, {"J": 1.0, "delta": 0.5}, "H = J Σ_<ij> (X_i X_j + Y_i Y_j + Δ Z_i Z_j)",
        "U(1) symmetry: total Z magnetisation is conserved; gapless for |Δ| < 1 on the chain.",
    ),
    "xy": Family(
        "xy", xy, {"J": 1.0}, "H = J Σ_<ij> (X_i X_j + Y_i Y_j)",
        "U(1) symmetry: total Z magnetisation is conserved; maps to free fermions on the chain.",
    ),
    "j1j2": Family(
        "j1j2", j1j2, {"J1": 1.0, "J2": 0.5},
        "H = J1 Σ σ_i·σ_{i+1} + J2 Σ σ_i·σ_{i+2} (σ·σ = XX + YY + ZZ)",
        "SU(2) symmetry; frustrated chain, dimerised for J2 > 0.2411 J1 (Majumdar-Ghosh point at J2 = J1/2).",
        geometries=False, min_ring=4,
    ),
    "hubbard": Family(
        "hubbard", hubbard, {"t": 1.0, "U": 4.0},
        "H = -t Σ_<ij>,σ (c†_iσ c_jσ + h.c.) + U Σ_i (n_i↑ - 1/2)(n_i↓ - 1/2)", _HUBBARD_SYM,
        qubits_per_site=2,
    ),
}


@functools.cache
def molecule_data(name: str) -> dict:
    """The committed JSON record of a molecule (terms, nuclear repulsion, provenance)."""
    path = DATA_DIR / f"{name}.json"
    if not path.exists():
        raise GoalError(f"no molecular Hamiltonian named '{name}'; available: {molecule_names()}")
    return json.loads(path.read_text())


def molecule_names() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.json"))


def molecule_hamiltonian(name: str) -> SparsePauliOp:
    """Electronic terms plus the nuclear repulsion on the identity: eigenvalues are total energies."""
    data = molecule_data(name)
    n = data["num_qubits"]
    terms = [(label, coeff) for label, coeff in data["electronic_terms"]]
    terms.append(("I" * n, data["nuclear_repulsion"]))
    return SparsePauliOp.from_list(terms).simplify(atol=1e-14)


def curve_members(curve: str) -> list[str]:
    """The committed molecules of one dissociation curve (``h2``, ``lih``), by increasing bond length."""
    members = [(molecule_data(m)["provenance"]["bond_length_angstrom"], m) for m in molecule_names()
               if molecule_data(m).get("curve") == curve]
    if not members:
        curves = sorted({molecule_data(m).get("curve") for m in molecule_names()} - {None})
        raise GoalError(f"no dissociation curve named '{curve}'; curves: {curves}")
    return [m for _, m in sorted(members)]

