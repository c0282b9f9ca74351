"""Committed molecules (PySCF, offline): each checked against an independent sector diagonalisation and PySCF.

The sector here is cut out of Qiskit's own sparse matrix by counting bits, sharing no code with ``exact.py``.
"""

import json
import pathlib
import sys

import numpy as np
import pytest
from qiskit.quantum_info import SparsePauliOp
from scipy.sparse.linalg import eigsh

from workers.evaluation.errors import GoalError
from workers.evaluation.goals import curve_members, get_goal
from workers.evaluation.goals.hamiltonians import molecule_data, molecule_names

ROOT = pathlib.Path(__file__).resolve().parent.parent
MOLECULES = molecule_names()


def _sector_indices(n, up, down):
    states = np.arange(2**n)
    half = n // 2
    low, high = states & ((1 << half) - 1), states >> half
    count = np.vectorize(lambda v: int(v).bit_count())
    return states[(count(low) == up) & (count(high) == down)]


def _sector_energy(op, up, down):
    idx = _sector_indices(op.num_qubits, up, down)
    block = op.to_matrix(sparse=True)[idx][:, idx]
    if block.shape[0] <= 400:
        return float(np.linalg.eigvalsh(block.toarray())[0])
    return float(eigsh(block, k=1, which="SA", tol=1e-12)[0][0])


def test_the_promised_molecules_are_committed():
    assert {"h2", "lih", "beh2", "h2o", "n2"} <= set(MOLECULES)
    for curve in ("h2", "lih"):
        members = curve_members(curve)
        bonds = [molecule_data(m)["provenance"]["bond_length_angstrom"] for m in members]
        assert len(members) >= 8 and bonds == sorted(bonds) and len(set(bonds)) == len(bonds)
    with pytest.raises(GoalError, match="no dissociation curve named 'he2'"):
        curve_members("he2")


@pytest.mark.parametrize("name", MOLECULES)
def test_molecule_matches_pyscf_in_its_electron_sector(name):
    goal, data = get_goal(name), molecule_data(name)
    up, down = data["num_particles"]
    assert goal.num_particles == (up, down) and goal.num_qubits == data["num_qubits"]
    independent = _sector_energy(goal.hamiltonian, up, down)
    assert independent == pytest.approx(data["fci_energy_pyscf"], abs=1e-8)
    assert goal.exact_energy == pytest.approx(independent, abs=1e-9)
    prov = goal.provenance
    assert prov["basis"] == "sto-3g" and prov["versions"]["pyscf"] and prov["frozen_core"] and prov["active_space"]


@pytest.mark.parametrize("name", MOLECULES)
def test_the_hartree_fock_determinant_has_the_hartree_fock_energy(name):
    # lowest orbitals occupied, spin up on the lower half: <HF|H|HF> is PySCF's RHF energy (checks the mapping)
    goal, data = get_goal(name), molecule_data(name)
    n, (up, down) = goal.num_qubits, data["num_particles"]
    hf = sum(1 << q for q in range(up)) + sum(1 << (n // 2 + q) for q in range(down))
    diagonal = 0.0
    for label, c in goal.hamiltonian.to_list():
        if set(label) <= {"I", "Z"}:
            zmask = sum(1 << q for q, p in enumerate(label[::-1]) if p == "Z")
            diagonal += float(np.real(c)) * (-1) ** (hf & zmask).bit_count()
    assert diagonal == pytest.approx(data["hartree_fock_energy"], abs=1e-8)
    assert data["hartree_fock_energy"] >= data["fci_energy_pyscf"] - 1e-9


def test_dissociation_curves_have_their_minimum_near_equilibrium_and_the_right_limit():
    h2 = {m: get_goal(m).exact_energy for m in curve_members("h2")}
    assert min(h2, key=h2.get) == "h2-0.70"  # equilibrium 0.735 A lies between 0.70 and 0.80
    # two STO-3G hydrogen atoms: 2 x -0.46658185 Ha
    assert h2["h2-2.50"] == pytest.approx(2 * -0.46658185, abs=5e-3)
    lih = {m: get_goal(m).exact_energy for m in curve_members("lih")}
    assert min(lih, key=lih.get) == "lih-1.60"  # STO-3G equilibrium near 1.55 A


@pytest.mark.parametrize("name,sector", [("beh2", (2, 2)), ("h2o", (4, 4)), ("n2", (3, 3))])
def test_active_space_molecules_state_their_frozen_core_and_sector(name, sector):
    goal = get_goal(name)
    assert goal.num_qubits == 12 and goal.num_particles == sector
    assert "frozen" in goal.provenance["frozen_core"] and "electrons in 6" in goal.provenance["active_space"]
    assert f"{sum(sector)} electrons in 6 spatial orbitals" in goal.description


def test_goals_show_says_whether_the_whole_space_lies_lower():
    summary = get_goal("h2o").summary()  # a whole-space eigensolve of 4,096 states (cached on disk afterwards)
    assert summary["num_particles"] == [4, 4] and summary["exact_energy_sector"].endswith("spin-down electrons")
    assert summary["full_space_energy"] <= summary["exact_energy"] + 1e-9
    assert summary["full_space_note"] == "the sector holds the whole space's minimum"


def test_regenerating_with_pyscf_reproduces_the_committed_terms():
    pytest.importorskip("pyscf")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import generate_molecules as gen
    finally:
        sys.path.pop(0)
    fresh = gen.build("h2-0.70", gen.MOLECULES["h2-0.70"])
    committed = json.loads((ROOT / "workers/evaluation/goals/data/h2-0.70.json").read_text())
    assert fresh["fci_energy_pyscf"] == pytest.approx(committed["fci_energy_pyscf"], abs=1e-10)
    a = SparsePauliOp.from_list(fresh["electronic_terms"])
    b = SparsePauliOp.from_list([tuple(t) for t in committed["electronic_terms"]])
    assert np.max(np.abs((a - b).simplify(atol=0).coeffs)) < 1e-9


@pytest.mark.parametrize("name", ["h2-2.50", "lih-4.00", "n2"])
def test_the_procedural_generator_starts_from_a_determinant_in_the_goal_sector(name):
    # at 2.5 A the lowest diagonal basis state of H2 is the (2 up, 0 down) triplet component, outside the goal's sector
    from workers.generation.procedural import _lowest_basis_state

    goal = get_goal(name)
    occupied, half = _lowest_basis_state(goal), goal.num_qubits // 2
    assert (sum(q < half for q in occupied), sum(q >= half for q in occupied)) == goal.num_particles
