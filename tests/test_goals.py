"""Goals: built-in families, molecules, published energies, user YAML files, spec round trips."""

import textwrap

import numpy as np
import pytest
from qiskit.quantum_info import SparsePauliOp

from workers.evaluation.errors import GoalError
from workers.evaluation.goals import DEFAULT_ALLOWED_GATES, exact, get_goal, goal_from_spec
from workers.evaluation.goals.files import goal_from_mapping, load_goal_file

PUBLISHED = {
    # periodic TFIM at the critical point J = h = 1
    "tfim-4": -5.2262518595,
    "tfim-8": -10.2516617910,
    # periodic Heisenberg antiferromagnet
    "heisenberg-8": -14.6043736357,
    # H2, STO-3G, 0.735 Å, total energy (FCI)
    "h2": -1.137306035753,
}


@pytest.mark.parametrize("name,energy", PUBLISHED.items())
def test_exact_energies_match_published_values(name, energy):
    assert get_goal(name).exact_energy == pytest.approx(energy, abs=1e-9)


def test_lih_ground_energy_is_the_total_fci_energy():
    goal = get_goal("lih")
    assert goal.num_qubits == 12
    # PySCF FCI (recorded by the generator) and the sparse eigensolver agree: total energies, nuclear repulsion in
    assert goal.exact_energy == pytest.approx(goal.reference_energy, abs=1e-8)
    assert goal.exact_energy == pytest.approx(-7.8823622868, abs=1e-8)


def test_tfim_open_chain_has_no_wraparound_bond():
    closed, open_ = get_goal("tfim-6"), get_goal("tfim-open-6")
    assert len(closed.hamiltonian) == 12 and len(open_.hamiltonian) == 11
    # open chain at J = h = 1 is free fermions with k_m = 2 pi m / (2N + 1): E0 = -sum sqrt(2 + 2 cos k_m) (Pfeuty)
    k = 2 * np.pi * np.arange(1, 7) / 13
    assert open_.exact_energy == pytest.approx(-np.sum(np.sqrt(2 + 2 * np.cos(k))), abs=1e-9)
    assert open_.exact_energy > closed.exact_energy


def test_xy_ring_energy_matches_free_fermions():
    # XY ring of 6 sites, H = sum XX + YY = 2 sum (s+s- + h.c.): ground energy -8 (half filling)
    assert get_goal("xy-6").exact_energy == pytest.approx(-8.0, abs=1e-9)


def test_goal_carries_its_defaults():
    goal = get_goal("tfim-8")
    assert goal.max_depth == 50
    assert goal.allowed_gates == DEFAULT_ALLOWED_GATES
    assert set(DEFAULT_ALLOWED_GATES) == {"rx", "ry", "rz", "h", "x", "cx", "cz", "rzz"}
    assert goal.is_lattice and goal.family == "tfim"


def test_lattice_goals_resize_and_molecules_refuse():
    goal = get_goal("heisenberg-8")
    small = goal.at_size(4)
    assert small.num_qubits == 4 and small.name == "heisenberg-4"
    assert small.exact_energy == pytest.approx(-8.0, abs=1e-9)
    with pytest.raises(GoalError, match="fixed size"):
        get_goal("h2").at_size(6)


@pytest.mark.parametrize("name", ["tfim-8", "tfim-open-5", "xxz-6", "h2", "lih"])
def test_specs_round_trip_to_the_same_goal(name):
    goal = get_goal(name)
    again = goal_from_spec(goal.to_spec())
    assert again.spec_hash == goal.spec_hash
    assert again.kind == goal.kind and again.name == goal.name
    assert (again.hamiltonian - goal.hamiltonian).simplify(atol=1e-12).coeffs.size <= 1
    assert again.exact_energy == pytest.approx(goal.exact_energy, abs=1e-10)


@pytest.mark.parametrize("bad,fragment", [
    ("tfim-2", "between 3 and 20"),
    ("tfim-99", "between 3 and 20"),
    ("ising-4", "unknown goal"),
    ("", "non-empty"),
    ("h3", "unknown goal"),
])
def test_bad_goal_names_list_the_valid_ones(bad, fragment):
    with pytest.raises(GoalError, match=fragment):
        get_goal(bad)


def test_limits_override_and_unknown_gates_are_named():
    goal = get_goal("tfim-4", max_depth=10, allowed_gates="ry,cz")
    assert goal.max_depth == 10 and goal.allowed_gates == ("ry", "cz")
    with pytest.raises(GoalError, match=r"unknown gate name\(s\) \['foo'\]"):
        get_goal("tfim-4", allowed_gates=["ry", "foo"])
    with pytest.raises(GoalError, match="max_depth must be a positive integer"):
        get_goal("tfim-4", max_depth=0)


def test_yaml_pauli_goal_with_full_and_sparse_labels(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent("""
        name: three-spins
        num_qubits: 3
        pauli_terms:
          - ["ZZI", -1.0]
          - {pauli: "Z0 Z1", coeff: -1.0}
          - ["X2", -0.5]
        max_depth: 12
        allowed_gates: [ry, cz]
    """))
    (goal,) = load_goal_file(path)
    expected = SparsePauliOp.from_list([("ZZI", -1.0), ("IZZ", -1.0), ("XII", -0.5)])
    assert (goal.hamiltonian - expected).simplify(atol=1e-12).coeffs.size <= 1
    assert goal.exact_energy == pytest.approx(exact.compute_ground_energy(expected))
    assert goal.max_depth == 12 and goal.allowed_gates == ("ry", "cz")
    assert get_goal(str(path)).name == "three-spins"


def test_yaml_family_goal_with_parameters(tmp_path):
    path = tmp_path / "fam.yml"
    path.write_text("goals:\n  - {name: xxz-strong, family: xxz, num_qubits: 6, params: {delta: 2.0}}\n"
                    "  - {name: weak-field, family: tfim, num_qubits: 4, params: {h: 0.5, periodic: false}}\n")
    strong, weak = load_goal_file(path)
    assert strong.params["delta"] == 2.0 and strong.exact_energy < get_goal("xxz-6").exact_energy
    assert weak.params["periodic"] is False and len(weak.hamiltonian) == 3 + 4
    assert strong.at_size(4).name == "xxz-strong@4"


@pytest.mark.parametrize("mapping,fragment", [
    ({"name": "a", "num_qubits": 2, "pauli_terms": [["ZZZ", 1.0]]}, r"pauli_terms\[0\].*3 characters"),
    ({"name": "a", "num_qubits": 2, "pauli_terms": [["Z5", 1.0]]}, "out of range"),
    ({"name": "a", "num_qubits": 2, "pauli_terms": [["ZQ", 1.0]]}, "cannot read"),
    ({"name": "a", "num_qubits": 2, "pauli_terms": [["ZZ", "big"]]}, "coeff must be a finite real"),
    ({"name": "a", "num_qubits": 2, "pauli_terms": [["ZZ", float("nan")]]}, "coeff must be a finite real"),
    ({"name": "a", "num_qubits": 2, "pauli_terms": []}, "non-empty list"),
    ({"name": "a", "num_qubits": 2}, "either 'family'"),
    ({"name": "a", "num_qubits": -1, "pauli_terms": [["Z", 1]]}, "'num_qubits' must be a positive integer"),
    ({"name": "a b", "num_qubits": 2, "pauli_terms": [["ZZ", 1]]}, "field 'name'"),
    ({"name": "a", "num_qubits": 2, "pauli_terms": [["ZZ", 1]], "depth": 3}, r"unknown field\(s\) \['depth'\]"),
    ({"name": "a", "num_qubits": 4, "family": "potts"}, "field 'family' must be one of"),
    ({"name": "a", "num_qubits": 4, "family": "tfim", "params": {"g": 1}}, r"no parameter\(s\) \['g'\]"),
    ({"name": "a", "num_qubits": 4, "family": "tfim", "params": {"h": "x"}}, "'h' must be a number"),
    ({"name": "a", "num_qubits": 2, "pauli_terms": [["ZZ", 1], ["ZZ", -1]]}, "cancel to zero"),
    ({"name": "a", "num_qubits": 2, "pauli_terms": [["ZZ", 1]], "max_depth": "deep"}, "max_depth"),
])
def test_bad_goal_fields_are_named(mapping, fragment):
    with pytest.raises(GoalError, match=fragment):
        goal_from_mapping(mapping)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(GoalError, match="cannot read goal file"):
        load_goal_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(GoalError, match="not valid YAML"):
        load_goal_file(bad)


def test_exact_energy_cache_survives_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("QMIND_CACHE_DIR", str(tmp_path))
    op = SparsePauliOp.from_list([("ZZZZZZZZZZZ", 0.3), ("XIIIIIIIIIX", -1.0)])
    energy = exact.ground_energy(op)
    cached = list((tmp_path / "exact").glob("*.json"))
    assert len(cached) == 1
    assert exact._disk_get(exact.hamiltonian_key(op)) == pytest.approx(energy)


def test_non_hermitian_hamiltonian_is_refused():
    op = SparsePauliOp.from_list([("XY", 1j)])  # i X Y is anti-Hermitian
    with pytest.raises(Exception, match="not Hermitian"):
        exact.compute_ground_energy(op)


def test_pauli_sum_text_is_readable_and_shortened():
    assert get_goal("tfim-4").pauli_sum_text().startswith("-1 Z0 Z1 - 1 Z1 Z2")
    text = get_goal("lih").pauli_sum_text(max_terms=5)
    assert "(+626 more terms, 631 in total)" in text


def test_the_json_summary_carries_every_term_at_full_precision():
    goal = get_goal("lih")
    summary = goal.summary()
    assert len(summary["pauli_terms"]) == len(goal.hamiltonian) == 631
    assert "rightmost character" in summary["label_order"] and summary["num_particles"] == [2, 2]
    rebuilt = SparsePauliOp.from_list([(label, coeff) for label, coeff in summary["pauli_terms"]])
    assert np.max(np.abs((rebuilt - goal.hamiltonian).simplify(atol=0).coeffs)) == 0.0
    assert "more terms" in summary["hamiltonian"]  # the text form for people stays short


def test_goals_show_json_on_the_command_line_round_trips_the_operator():
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "scheduler.cli", "goals", "show", "h2", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    op = SparsePauliOp.from_list([tuple(t) for t in out["pauli_terms"]])
    assert exact.compute_ground_energy(op, (1, 1)) == pytest.approx(out["exact_energy"], abs=1e-12)
    assert out["num_particles"] == [1, 1] and out["full_space_note"].startswith("the sector holds")


def _pauli_goal(**extra):
    # two spin orbitals per spin: a hopping XX + YY on each half plus a field that favours filling every orbital
    terms = [["IIXX", -0.5], ["IIYY", -0.5], ["XXII", -0.5], ["YYII", -0.5], ["IIIZ", 2.0], ["IIZI", 2.0],
             ["IZII", 2.0], ["ZIII", 2.0]]
    return goal_from_mapping({"name": "sector-test", "num_qubits": 4, "pauli_terms": terms, **extra})


def test_a_declared_sector_sets_the_exact_energy_and_says_when_the_whole_space_is_lower():
    free, sector = _pauli_goal(), _pauli_goal(num_particles=[1, 1])
    assert sector.exact_energy == pytest.approx(-2.0, abs=1e-12)  # one particle per spin: -1 each from hopping
    assert free.exact_energy == pytest.approx(-8.0, abs=1e-12)  # the empty state
    summary = sector.summary()
    assert summary["full_space_energy"] == pytest.approx(-8.0)
    assert "lower minimum" in summary["full_space_note"]
    assert sector.spec_hash != free.spec_hash


@pytest.mark.parametrize("extra,fragment", [
    ({"num_particles": [3, 0]}, "num_particles must be"),
    ({"num_particles": "two"}, "num_particles must be"),
    ({"reference_energy": -2.5, "num_particles": [1, 1]}, "does not match the eigensolver"),
    ({"reference_energy": -2.0}, "does not match the eigensolver"),  # right for the sector, wrong for the space
])
def test_bad_reference_data_is_refused_at_load(extra, fragment):
    with pytest.raises(GoalError, match=fragment):
        _pauli_goal(**extra)


def test_a_correct_reference_loads_and_a_sector_the_hamiltonian_breaks_is_refused():
    assert _pauli_goal(reference_energy=-2.0, num_particles=[1, 1]).reference_energy == -2.0
    with pytest.raises(GoalError, match="out of the declared particle sector"):
        goal_from_mapping({"name": "leaky", "num_qubits": 2, "pauli_terms": [["IX", 1.0]], "num_particles": [1, 0]})


def test_a_cache_file_for_another_hamiltonian_or_sector_is_not_trusted(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("QMIND_CACHE_DIR", str(tmp_path))
    op = SparsePauliOp.from_list([("ZZZZZZZZZZZ", 0.25), ("XIIIIIIIIIX", -1.5)])
    key = exact.hamiltonian_key(op)
    path = tmp_path / "exact" / f"{exact.cache_key(key, None)}.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"hamiltonian_sha256": "0" * 64, "sector": None, "energy": -99.0}))
    assert exact._disk_get(key) is None
    exact._cached.cache_clear()
    energy = exact.ground_energy(op)
    assert energy == pytest.approx(exact.compute_ground_energy(op)) and energy > -99
    assert json.loads(path.read_text())["hamiltonian_sha256"] == key  # rewritten with the right record
    assert exact.cache_key(key, (1, 1)) != exact.cache_key(key, None)
    assert exact._disk_get(key, (1, 1)) is None
