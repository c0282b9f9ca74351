"""Lattice Hamiltonian families and the committed molecular Hamiltonians.

Qubit order is Qiskit's: qubit 0 is the rightmost character of a Pauli label. Families build a ``SparsePauliOp``
for any size from their parameters; molecules are read from ``data/<name>.json`` (made by
``scripts/generate_molecules.py``), so workers never need PySCF.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from typing import Callable

from qiskit.quantum_info import SparsePauliOp

from ..errors import GoalError

DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
MAX_LATTICE_QUBITS = 20


def _bonds(n: int, periodic: bool) -> list[tuple[int, int]]:
    bonds = [(i, i + 1) for i in range(n - 1)]
    if periodic and n > 2:
        bonds.append((n - 1, 0))
    return bonds


def tfim(n: int, *, J: float = 1.0, h: float = 1.0, periodic: bool = True) -> SparsePauliOp:
    """H = -J sum Z_i Z_{i+1} - h sum X_i."""
    terms = [("ZZ", [i, j], -J) for i, j in _bonds(n, periodic)]
    terms += [("X", [i], -h) for i in range(n)]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=n).simplify()


def xxz(n: int, *, J: float = 1.0, delta: float = 0.5, periodic: bool = True) -> SparsePauliOp:
    """H = J sum (X_i X_{i+1} + Y_i Y_{i+1} + delta Z_i Z_{i+1})."""
    terms = []
    for i, j in _bonds(n, periodic):
        terms += [("XX", [i, j], J), ("YY", [i, j], J)]
        if delta:
            terms.append(("ZZ", [i, j], J * delta))
    return SparsePauliOp.from_sparse_list(terms, num_qubits=n).simplify()


def heisenberg(n: int, *, J: float = 1.0, periodic: bool = True) -> SparsePauliOp:
    """H = J sum (X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1})."""
    return xxz(n, J=J, delta=1.0, periodic=periodic)


def xy(n: int, *, J: float = 1.0, periodic: bool = True) -> SparsePauliOp:
    """H = J sum (X_i X_{i+1} + Y_i Y_{i+1})."""
    return xxz(n, J=J, delta=0.0, periodic=periodic)


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

    def min_qubits(self, periodic: bool) -> int:
        return 3 if periodic else 2

    def check_params(self, params: dict) -> dict:
        unknown = sorted(set(params) - set(self.defaults) - {"periodic"})
        if unknown:
            raise GoalError(
                f"family '{self.name}' has no parameter(s) {unknown}; valid parameters: "
                f"{sorted(self.defaults) + ['periodic']}"
            )
        merged = {**self.defaults, "periodic": True, **params}
        for key, value in merged.items():
            if key == "periodic":
                if not isinstance(value, bool):
                    raise GoalError(f"family parameter 'periodic' must be true or false, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise GoalError(f"family parameter '{key}' must be a number, got {value!r}")
            else:
                merged[key] = float(value)
        return merged


FAMILIES: dict[str, Family] = {
    "tfim": Family(
        "tfim", tfim, {"J": 1.0, "h": 1.0}, "H = -J Σ Z_i Z_{i+1} - h Σ X_i",
        "Z2 spin-flip symmetry (product of X), translation invariance on the ring; critical at h = J.",
    ),
    "heisenberg": Family(
        "heisenberg", heisenberg, {"J": 1.0}, "H = J Σ (X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1})",
        "SU(2) spin-rotation symmetry, conserved total magnetisation; antiferromagnetic ground state for J > 0.",
    ),
    "xxz": Family(
        "xxz", xxz, {"J": 1.0, "delta": 0.5}, "H = J Σ (X_i X_{i+1} + Y_i Y_{i+1} + Δ Z_i Z_{i+1})",
        "U(1) symmetry: total Z magnetisation is conserved; gapless for |Δ| < 1.",
    ),
    "xy": Family(
        "xy", xy, {"J": 1.0}, "H = J Σ (X_i X_{i+1} + Y_i Y_{i+1})",
        "U(1) symmetry: total Z magnetisation is conserved; maps to free fermions.",
    ),
}


@functools.lru_cache(maxsize=None)
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
