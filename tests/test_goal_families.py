"""2D lattices, ladders, the J1-J2 chain and Fermi-Hubbard goals, each against an independent exact diagonalisation.

The references here share no code with workers/evaluation/goals: spin models are built from site coordinates with
numpy Kronecker products, Hubbard models in the fermionic occupation basis with explicit anticommutation signs.
"""

from collections import Counter
from functools import reduce
from itertools import combinations

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import eigsh

from workers.evaluation.errors import GoalError
from workers.evaluation.goals import get_goal, goal_from_spec

PAULI = {"X": np.array([[0, 1], [1, 0]], dtype=complex), "Y": np.array([[0, -1j], [1j, 0]]),
         "Z": np.diag([1.0, -1.0]).astype(complex), "I": np.eye(2, dtype=complex)}


def _op(n, placed):
    """Kronecker product with qubit 0 rightmost (Qiskit order), sparse."""
    return reduce(lambda a, b: sparse.kron(a, b, format="csr"),
                  [sparse.csr_matrix(PAULI[placed.get(q, "I")]) for q in reversed(range(n))])


def _lowest(h):
    if h.shape[0] <= 256:
        return np.linalg.eigvalsh(h.toarray())[0]
    return eigsh(h, k=1, which="SA", tol=1e-12, v0=np.ones(h.shape[0]))[0][0]


def _grid_bonds(rows, cols, periodic, ladder=False):
    """Bonds from coordinates: site (r, c) -> c * rows + r; a torus wraps every direction (length 2 twice)."""
    bonds = Counter()
    for r in range(rows):
        for c in range(cols):
            for dr, dc in ((1, 0), (0, 1)):
                r2, c2 = r + dr, c + dc
                wrap_r, wrap_c = r2 == rows, c2 == cols
                if (wrap_r and (not periodic or ladder)) or (wrap_c and not periodic):
                    continue
                if (wrap_r and rows == 1) or (wrap_c and cols == 1):
                    continue
                a, b = c * rows + r, (c2 % cols) * rows + r2 % rows
                bonds[tuple(sorted((a, b)))] += 1
    return bonds


def _spin_energy(n, bonds, couplings, field=None):
    h = sparse.csr_matrix((2**n, 2**n), dtype=complex)
    for (i, j), mult in bonds.items():
        for p, c in couplings.items():
            h += mult * c * _op(n, {i: p, j: p})
    if field:
        p, c = field
        for i in range(n):
            h += c * _op(n, {i: p})
    return _lowest(h)


@pytest.mark.parametrize("name,rows,cols,periodic,ladder", [
    ("tfim-2x2", 2, 2, True, False), ("tfim-open-2x3", 2, 3, False, False), ("tfim-3x3", 3, 3, True, False),
    ("tfim-open-2x4", 2, 4, False, False), ("tfim-ladder-4", 2, 4, True, True),
])
def test_tfim_on_square_lattices_and_ladders_matches_kronecker_diagonalisation(name, rows, cols, periodic, ladder):
    goal = get_goal(name)
    expected = _spin_energy(rows * cols, _grid_bonds(rows, cols, periodic, ladder), {"Z": -1.0}, ("X", -1.0))
    assert goal.num_qubits == rows * cols
    assert goal.exact_energy == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name,rows,cols,periodic,ladder,delta", [
    ("heisenberg-open-2x2", 2, 2, False, False, 1.0), ("heisenberg-2x3", 2, 3, True, False, 1.0),
    ("heisenberg-ladder-open-4", 2, 4, False, True, 1.0), ("xxz-ladder-3", 2, 3, True, True, 0.5),
    ("xxz-open-3x3", 3, 3, False, False, 0.5),
])
def test_heisenberg_and_xxz_lattices_match_kronecker_diagonalisation(name, rows, cols, periodic, ladder, delta):
    goal = get_goal(name)
    expected = _spin_energy(rows * cols, _grid_bonds(rows, cols, periodic, ladder),
                            {"X": 1.0, "Y": 1.0, "Z": delta})
    assert goal.exact_energy == pytest.approx(expected, abs=1e-9)


def test_periodic_2x2_is_a_torus_whose_bonds_count_twice():
    torus, plaquette = get_goal("heisenberg-2x2"), get_goal("heisenberg-open-2x2")
    assert torus.exact_energy == pytest.approx(2 * plaquette.exact_energy, abs=1e-9)
    # the open 2x2 plaquette is the 4-site ring: Heisenberg ring of 4 spins, E0 = -8 in Pauli units
    assert plaquette.exact_energy == pytest.approx(-8.0, abs=1e-9)


@pytest.mark.slow
def test_heisenberg_4x4_torus_matches_the_published_energy():
    # 4x4 periodic Heisenberg antiferromagnet: E0 = -11.2284832084 J (S.S units) = 4x that in Pauli units
    goal = get_goal("heisenberg-4x4")
    assert goal.num_qubits == 16 and goal.family_sizes() == [8, 12, 16]
    assert goal.exact_energy == pytest.approx(4 * -11.2284832084, abs=1e-7)


@pytest.mark.slow
def test_tfim_4x4_torus_matches_an_independent_sparse_lanczos():
    n, states = 16, np.arange(2**16, dtype=np.int64)
    diag = np.zeros(2**n)
    for (i, j), mult in _grid_bonds(4, 4, True).items():
        diag -= mult * (1 - 2 * (((states >> i) ^ (states >> j)) & 1))
    rows = np.concatenate([states] + [states ^ (1 << q) for q in range(n)])
    cols = np.concatenate([states] * (n + 1))
    vals = np.concatenate([diag] + [-np.ones(2**n)] * n)
    h = sparse.coo_matrix((vals, (rows, cols)), shape=(2**n, 2**n)).tocsr()
    expected = eigsh(h, k=1, which="SA", tol=1e-12, v0=np.ones(2**n))[0][0]
    assert get_goal("tfim-4x4").exact_energy == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("n,periodic", [(8, True), (7, False), (6, True)])
def test_j1j2_chain_matches_kronecker_diagonalisation(n, periodic):
    goal = get_goal(f"j1j2{'' if periodic else '-open'}-{n}")
    bonds = Counter()
    for d, coupling in ((1, 1.0), (2, 0.5)):
        for i in range(n if periodic else n - d):
            bonds[tuple(sorted((i, (i + d) % n)))] = coupling
    h = sum(c * sum(_op(n, {i: p, j: p}) for p in "XYZ") for (i, j), c in bonds.items())
    assert goal.exact_energy == pytest.approx(_lowest(h), abs=1e-9)


def test_j1j2_at_the_majumdar_ghosh_point_has_the_dimer_energy():
    # J2 = J1/2 on a ring of even length: the dimer product is exact, E0 = -3/4 J1 N / ... = -(3/2) N in Pauli units
    assert get_goal("j1j2-8").exact_energy == pytest.approx(-1.5 * 8, abs=1e-9)


def _hubbard_energy(rows, cols, periodic, n_up, n_down, t=1.0, u=4.0):
    """Occupation-basis Hubbard: orbital (site, spin) -> site + spin * L, signs from the orbitals passed over."""
    sites = rows * cols
    bonds = _grid_bonds(rows, cols, periodic) if rows > 1 else Counter(
        {tuple(sorted((i, (i + 1) % sites))): 1 for i in range(sites if periodic and sites > 2 else sites - 1)})
    ups = [sum(1 << s for s in c) for c in combinations(range(sites), n_up)]
    downs = [sum(1 << (s + sites) for s in c) for c in combinations(range(sites), n_down)]
    states = sorted(a | b for a in ups for b in downs)
    index = {s: k for k, s in enumerate(states)}
    h = np.zeros((len(states), len(states)))
    for k, s in enumerate(states):
        for site in range(sites):
            h[k, k] += u * (((s >> site) & 1) - 0.5) * (((s >> (site + sites)) & 1) - 0.5)
        for (i, j), mult in bonds.items():
            for spin in (0, 1):
                for a, b in ((i, j), (j, i)):  # c+_a c_b
                    pa, pb = a + spin * sites, b + spin * sites
                    if not (s >> pb) & 1 or ((s >> pa) & 1 and pa != pb):
                        continue
                    mid = s & ~(1 << pb)
                    sign = (-1) ** ((s & ((1 << pb) - 1)).bit_count() + (mid & ((1 << pa) - 1)).bit_count())
                    h[index[mid | (1 << pa)], k] += -t * mult * sign
    return np.linalg.eigvalsh(h)[0]


@pytest.mark.parametrize("name,rows,cols,periodic,sector", [
    ("hubbard-open-2", 1, 2, False, (1, 1)), ("hubbard-4", 1, 4, True, (2, 2)), ("hubbard-open-5", 1, 5, False, (3, 2)),
    ("hubbard-open-2x2", 2, 2, False, (2, 2)), ("hubbard-2x2", 2, 2, True, (2, 2)),
    ("hubbard-open-2x3", 2, 3, False, (3, 3)),
])
def test_hubbard_goals_match_occupation_basis_diagonalisation_at_half_filling(name, rows, cols, periodic, sector):
    goal = get_goal(name)
    assert goal.num_qubits == 2 * rows * cols and goal.num_particles == sector
    assert goal.exact_energy == pytest.approx(_hubbard_energy(rows, cols, periodic, *sector), abs=1e-9)


def test_two_site_hubbard_has_the_textbook_energy_and_half_filling_is_the_global_minimum():
    goal = get_goal("hubbard-open-2")
    assert goal.exact_energy == pytest.approx(-np.sqrt(4.0 + 4.0), abs=1e-12)  # -sqrt((U/2)^2 + 4 t^2)
    for name in ("hubbard-open-2", "hubbard-4", "hubbard-open-2x2"):
        g = get_goal(name)
        assert g.full_space_energy == pytest.approx(g.exact_energy, abs=1e-9)
        assert g.summary()["full_space_note"] == "the sector holds the whole space's minimum"


def test_the_sector_is_part_of_the_task_and_survives_a_spec_round_trip():
    goal = get_goal("hubbard-open-2x2")
    spec = goal.to_spec()
    assert spec["num_particles"] == [2, 2] and spec["params"]["rows"] == 2
    again = goal_from_spec(spec)
    assert again.num_particles == (2, 2) and again.spec_hash == goal.spec_hash and again.name == goal.name
    chain = get_goal("hubbard-open-4")  # the 4-site chain, not the 2x2 plaquette
    assert chain.spec_hash != goal.spec_hash and chain.exact_energy > goal.exact_energy


@pytest.mark.parametrize("name,sizes", [
    ("tfim-8", [4, 6, 8]), ("tfim-20", [8, 10, 12]), ("tfim-2x2", [4, 6, 8]), ("tfim-3x3", [6, 9, 12]),
    ("tfim-4x4", [8, 12, 16]), ("heisenberg-ladder-open-5", [6, 8, 10]), ("hubbard-open-2x2", [8, 12]),
    ("hubbard-6", [8, 12]), ("hubbard-open-2", [4, 8, 12]), ("h2", [4]),
])
def test_family_sizes_keep_the_width_and_stay_small(name, sizes):
    goal = get_goal(name)
    assert goal.family_sizes() == sizes
    for n in sizes:
        resized = goal.at_size(n) if n != goal.num_qubits else goal
        assert resized.num_qubits == n and resized.params == goal.params


def test_a_2d_lattice_resizes_by_whole_columns_only():
    goal = get_goal("tfim-open-3x3")
    assert goal.at_size(12).name == "tfim-open-3x4"
    with pytest.raises(GoalError, match="in steps of 3"):
        goal.at_size(10)


@pytest.mark.parametrize("bad,fragment", [
    ("j1j2-2x3", "chains only"), ("tfim-ladder-2x3", "named by its rungs"), ("tfim-1x4", "at least 2 rows"),
    ("tfim-5x5", "between 10 and 20 qubits"), ("hubbard-11", "2 qubits per site"), ("j1j2-3", "between 4 and 20"),
])
def test_bad_lattice_names_say_what_is_valid(bad, fragment):
    with pytest.raises(GoalError, match=fragment):
        get_goal(bad)


@pytest.mark.parametrize("name", ["tfim-3x3", "xxz-open-2x4", "heisenberg-ladder-open-3", "j1j2-open-6",
                                  "hubbard-4", "hubbard-open-2x2"])
def test_built_in_names_round_trip(name):
    assert get_goal(name).name == name


def test_yaml_family_goals_take_the_geometry_and_parameters(tmp_path):
    from workers.evaluation.goals import load_goal_file

    path = tmp_path / "lattices.yaml"
    path.write_text("goals:\n"
                    "  - {name: strong-field, family: tfim, num_qubits: 9, params: {rows: 3, h: 3.04}}\n"
                    "  - {name: rungs, family: xxz, num_qubits: 8, params: {ladder: true, periodic: false}}\n"
                    "  - {name: small-u, family: hubbard, num_qubits: 8, params: {U: 1.0, rows: 2}}\n")
    strong, rungs, small_u = load_goal_file(path)
    expected = _spin_energy(9, _grid_bonds(3, 3, True), {"Z": -1.0}, ("X", -3.04))
    assert strong.exact_energy == pytest.approx(expected, abs=1e-9)
    assert strong.at_size(12).name == "strong-field@12" and strong.at_size(12).params["rows"] == 3
    assert rungs.hamiltonian.equiv(get_goal("xxz-ladder-open-4").hamiltonian)
    assert small_u.num_particles == (2, 2)
    assert small_u.exact_energy == pytest.approx(_hubbard_energy(2, 2, True, 2, 2, u=1.0), abs=1e-9)


@pytest.mark.parametrize("params,fragment", [
    ({"rows": 0}, "'rows' must be a positive integer"), ({"rows": 2.5}, "'rows' must be a positive integer"),
    ({"ladder": True, "rows": 3}, "ladder has rows = 2"), ({"ladder": "yes"}, "'ladder' must be true or false"),
    ({"J": float("inf")}, "'J' must be a number"),
])
def test_bad_geometry_parameters_are_named(params, fragment):
    from workers.evaluation.goals import goal_from_mapping

    with pytest.raises(GoalError, match=fragment):
        goal_from_mapping({"name": "g", "family": "heisenberg", "num_qubits": 6, "params": params})
    with pytest.raises(GoalError, match=r"no parameter\(s\) \['rows'\]"):
        goal_from_mapping({"name": "g", "family": "j1j2", "num_qubits": 6, "params": {"rows": 2}})


def test_goals_list_shows_every_family_and_geometry():
    from scheduler.cli.goals import family_rows

    names = {row["name"] for row in family_rows()}
    assert {"tfim-RxC", "heisenberg-open-RxC", "xxz-ladder-C", "j1j2-N", "hubbard-L", "hubbard-open-RxC"} <= names
    assert "j1j2-RxC" not in names


def test_a_20_qubit_hubbard_goal_is_exact_in_its_sector_without_the_whole_space():
    goal = get_goal("hubbard-open-10")  # sector 5+5: 63,504 states instead of 2^20
    assert goal.num_qubits == 20 and goal.num_particles == (5, 5)
    summary = goal.summary()
    assert summary["full_space_energy"] is None and "not computed above 16 qubits" in summary["full_space_note"]
    # free fermions on the open chain (U = 0): 2 spins x sum of the 5 lowest -2 t cos(pi k / 11); the interaction
    # lowers that (the half-filled Fermi sea has <(n_up - 1/2)(n_down - 1/2)> = 0) by at most U L / 4 = 10
    free = 2 * sum(-2 * np.cos(np.pi * k / 11) for k in range(1, 6))
    assert free - 10 < summary["exact_energy"] < free
