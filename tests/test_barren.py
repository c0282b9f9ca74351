"""Barren-plateau check: sizes, the 2-design formula, the decay fit, and known ansaetze on both sides."""

import dataclasses
import json
import math

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp
from scipy.stats import unitary_group

from tests.ansatz_library import deep_random, heisenberg_hva, ry_cz, tfim_hva
from workers.evaluation.barren import (
    BarrenSettings,
    check_barren_plateau,
    fit_decay,
    hamiltonian_scale,
    scaling_sizes,
    two_design_variance,
)
from workers.evaluation.errors import EvaluationError
from workers.evaluation.goals import Goal, get_goal

EXTRA_GATES = ["rx", "ry", "rz", "h", "x", "cx", "cz", "rzz", "rxx", "ryy"]


def _circuits(builder, goal):
    return {n: builder(n) for n in scaling_sizes(goal)}


def _deep_goal(name):
    return dataclasses.replace(get_goal(name), max_depth=10_000)


@pytest.mark.parametrize("name,sizes", [("tfim-4", [4, 6, 8]), ("tfim-6", [4, 6, 8]), ("tfim-10", [6, 8, 10]),
                                        ("tfim-3", [3, 5, 7]), ("tfim-20", [8, 10, 12]), ("tfim-19", [7, 9, 11]),
                                        ("heisenberg-open-4", [4, 6, 8]), ("h2", [4])])
def test_scaling_sizes_step_by_two_and_stay_cheap(name, sizes):
    assert scaling_sizes(get_goal(name)) == sizes


def test_the_hamiltonian_scale_ignores_the_identity():
    op = SparsePauliOp(["II", "ZZ", "XI"], [5.0, -1.0, 0.5])
    assert hamiltonian_scale(op) == pytest.approx(1.25)


def test_the_two_design_formula_matches_haar_random_unitaries():
    """Var of dE/dphi for exp(-i phi/2 P) between two Haar-random unitaries, sampled directly."""
    d, samples = 8, 6000  # 3 qubits
    hamiltonian = SparsePauliOp(["ZZI", "IXX", "YIZ", "III"], [1.0, -0.6, 0.3, 2.0])
    h, p = hamiltonian.to_matrix(), SparsePauliOp("IIZ").to_matrix()
    rng = np.random.default_rng(11)
    before = unitary_group.rvs(d, size=samples, random_state=rng)
    after = unitary_group.rvs(d, size=samples, random_state=rng)
    psi = before[:, :, 0]  # U- |0>
    o = np.conj(np.transpose(after, (0, 2, 1))) @ h @ after  # U+^dag H U+
    a = 0.5j * (p @ o - o @ p)  # dE/dphi = <psi| (i/2)[P, O] |psi>
    grads = np.real(np.einsum("si,sij,sj->s", psi.conj(), a, psi))
    expected = two_design_variance(hamiltonian)
    assert expected == pytest.approx(d * d * 1.45 / (2 * (d * d - 1) * (d + 1)))
    assert grads.var() == pytest.approx(expected, rel=0.08)  # sampling error of a variance from 6000 draws
    assert abs(grads.mean()) < 0.02


def test_a_deep_random_circuit_sits_at_the_two_design_level():
    goal = dataclasses.replace(get_goal("h2"), max_depth=10_000)
    result = check_barren_plateau({4: deep_random(4, layers=40)}, goal, samples=400)
    assert result.method == "two-design"
    assert result.two_design_ratios[0] == pytest.approx(1.0, abs=0.25)


def test_a_deep_unstructured_circuit_is_a_barren_plateau():
    goal = _deep_goal("tfim-6")
    result = check_barren_plateau(_circuits(deep_random, goal), goal)
    assert result.has_barren_plateau
    assert result.method == "scaling" and result.sizes == (4, 6, 8)
    assert result.decay_rate == pytest.approx(math.log(2), abs=0.12)  # the 2-design rate
    assert result.decay_rate_stderr < 0.1
    assert result.variances[0] > result.variances[1] > result.variances[2]
    assert "barren plateau" in result.reason


@pytest.mark.parametrize("layers", [1, 2])
def test_a_shallow_local_circuit_is_not_a_barren_plateau(layers):
    goal = get_goal("tfim-6")
    result = check_barren_plateau(_circuits(lambda n: ry_cz(n, layers), goal), goal)
    assert not result.has_barren_plateau
    assert result.decay_rate < BarrenSettings().decay_threshold
    assert "no barren plateau" in result.reason


@pytest.mark.parametrize("goal_name,builder", [("tfim-8", tfim_hva), ("heisenberg-6", heisenberg_hva)])
def test_hamiltonian_variational_ansaetze_are_not_barren_plateaus(goal_name, builder):
    goal = get_goal(goal_name, allowed_gates=EXTRA_GATES)
    result = check_barren_plateau(_circuits(builder, goal), goal)
    assert not result.has_barren_plateau
    assert all(r > 2 for r in result.two_design_ratios)


def test_per_parameter_variances_are_reported_for_first_middle_last_and_random_parameters(monkeypatch):
    from qiskit.quantum_info import Statevector

    from workers.evaluation import barren

    drawn, barren_sample = {}, barren.sample_parameters

    def keep(program, rng, samples):  # the sampled points, to recompute the gradients independently
        drawn[program.num_qubits] = barren_sample(program, rng, samples)
        return drawn[program.num_qubits]

    monkeypatch.setattr(barren, "sample_parameters", keep)
    goal = get_goal("tfim-6")
    result = check_barren_plateau(_circuits(lambda n: ry_cz(n, 2), goal), goal, samples=50)
    names = result.parameter_names[1]  # n = 6: theta[0..17]
    assert names[:3] == ("theta[0]", "theta[9]", "theta[17]")
    assert len(names) == len(set(names)) == len(result.parameter_variances[1]) == 8
    # each reported value is the sample variance of its own parameter's gradient (parameter shift, Qiskit)
    circuit, points = ry_cz(6, 2), drawn[6]
    order = [p.name for p in circuit.parameters]

    def energy(x):
        return float(np.real(Statevector(circuit.assign_parameters(x)).expectation_value(goal.hamiltonian)))

    for name, reported in list(zip(names, result.parameter_variances[1]))[:3]:
        shift = np.eye(len(order))[order.index(name)] * np.pi / 2
        grads = [(energy(x + shift) - energy(x - shift)) / 2 for x in points]
        assert reported == pytest.approx(np.var(grads, ddof=1), rel=1e-6), name


def test_vanishing_gradients_are_flagged():
    def only_rz(n):
        theta = ParameterVector("t", n)
        qc = QuantumCircuit(n)
        for q in range(n):
            qc.rz(theta[q], q)  # phases on |0...0>: the energy never changes
        return qc

    goal = get_goal("tfim-4")
    result = check_barren_plateau(_circuits(only_rz, goal), goal, samples=20)
    assert result.has_barren_plateau and "vanish identically" in result.reason


def test_a_bad_extra_size_makes_the_verdict_not_measurable():
    goal = get_goal("tfim-4")
    circuits = _circuits(lambda n: ry_cz(n, 1), goal)
    circuits[8] = ry_cz(7, 1)  # wrong width at an extra size
    result = check_barren_plateau(circuits, goal, samples=50)
    assert result.sizes == (4, 6)
    assert result.verdict == "not measurable" and result.has_barren_plateau
    assert "n=8: circuit has 7 qubits" in result.reason and result.decay_rate is None


def test_a_missing_extra_size_is_not_measurable_and_says_why():
    goal = get_goal("tfim-4")
    circuits = {4: ry_cz(4, 1), 6: ry_cz(6, 1)}
    result = check_barren_plateau(circuits, goal, samples=30, size_errors={8: "ValueError: too big"})
    assert result.verdict == "not measurable" and "n=8: ValueError: too big" in result.reason


def test_the_goal_size_must_be_present_and_valid():
    goal = get_goal("tfim-4")
    with pytest.raises(EvaluationError, match="no circuit at the goal's own size"):
        check_barren_plateau({6: ry_cz(6, 1)}, goal)
    with pytest.raises(EvaluationError, match="fails verification"):
        check_barren_plateau({4: QuantumCircuit(4)}, goal)


def _pauli_goal(n):
    """A user goal of random 1- and 2-local terms (local, like every physical Hamiltonian here)."""
    rng = np.random.default_rng(2)
    terms = [(str(rng.choice(["ZZ", "XX", "YZ"])), [i, i + 1], rng.normal()) for i in range(n - 1)]
    terms += [(str(rng.choice(["X", "Z"])), [i], rng.normal()) for i in range(n)]
    return Goal(name=f"random-{n}", description="random local Pauli sum", num_qubits=n, max_depth=10_000,
                hamiltonian=SparsePauliOp.from_sparse_list(terms, num_qubits=n))


def test_a_fixed_size_goal_flags_a_two_design_like_circuit_but_not_a_shallow_one():
    goal = _pauli_goal(6)
    deep = check_barren_plateau({6: deep_random(6)}, goal)
    shallow = check_barren_plateau({6: ry_cz(6, 1)}, goal)
    assert deep.method == shallow.method == "two-design"
    assert deep.has_barren_plateau and not shallow.has_barren_plateau
    assert deep.two_design_variance == pytest.approx(two_design_variance(goal.hamiltonian))


def test_small_fixed_size_goals_are_never_flagged():
    goal = dataclasses.replace(get_goal("h2"), max_depth=10_000)
    result = check_barren_plateau({4: deep_random(4)}, goal)
    assert not result.has_barren_plateau and "not applied below 6 qubits" in result.reason
    assert result.verdict == "no barren plateau"


def test_the_decay_fit_recovers_a_known_rate():
    sizes = [4, 6, 8, 10]
    rate, err = fit_decay(sizes, [1.0 - 0.5 * n for n in sizes], [0.0] * 4)
    assert rate == pytest.approx(0.5) and err == pytest.approx(0.0, abs=1e-12)
    rate, err = fit_decay(sizes, [1.0 - 0.5 * n + e for n, e in zip(sizes, [0.1, -0.1, 0.1, -0.1])], [0.05] * 4)
    assert rate == pytest.approx(0.5, abs=0.05) and err > 0.02
    with pytest.raises(EvaluationError):
        fit_decay([6, 6], [0.0, 1.0], [0.0, 0.0])


def test_the_same_seed_gives_the_same_result_and_it_serialises():
    goal = get_goal("tfim-4")
    circuits = _circuits(lambda n: ry_cz(n, 1), goal)
    one = check_barren_plateau(circuits, goal, samples=40, seed=3)
    two = check_barren_plateau(circuits, goal, samples=40, seed=3)
    other = check_barren_plateau(circuits, goal, samples=40, seed=4)
    assert one.variances == two.variances and one.variances != other.variances
    data = json.loads(json.dumps(one.to_dict()))
    assert data["seed"] == 3 and data["samples"] == 40 and len(data["variances"]) == 3


def _scaled(builder, factor_of_n):
    """``builder``'s circuit with every angle multiplied by factor_of_n(n) (same states, other Parameters)."""
    def build(n):
        qc = builder(n)
        return qc.assign_parameters({p: factor_of_n(n) * p for p in qc.parameters})
    return build


@pytest.mark.parametrize("factor", [lambda n: 2 ** (n // 2), lambda n: 3, lambda n: 0.01 * n])
def test_multiplying_the_angles_changes_neither_the_statistics_nor_the_verdict(factor):
    goal = _deep_goal("tfim-6")
    plain = check_barren_plateau(_circuits(lambda n: deep_random(n, 24), goal), goal, samples=60)
    scaled = check_barren_plateau(_circuits(_scaled(lambda n: deep_random(n, 24), factor), goal), goal,
                                  samples=60)
    assert scaled.variances == pytest.approx(plain.variances, rel=1e-6)
    assert scaled.verdict == plain.verdict == "barren plateau"


def test_splitting_a_parameter_into_a_sum_changes_nothing():
    goal = get_goal("tfim-6")

    def split(n):
        qc = tfim_hva(n)
        a, b = ParameterVector("a", 1), ParameterVector("b", 1)
        first = qc.parameters[0]
        return qc.assign_parameters({first: a[0] + b[0]})
    plain = check_barren_plateau(_circuits(tfim_hva, goal), goal, samples=60)
    other = check_barren_plateau(_circuits(split, goal), goal, samples=60)
    assert other.verdict == plain.verdict == "no barren plateau"


def test_the_aer_engine_gives_the_same_variances(monkeypatch):
    from workers.evaluation.simulation.aer import AerEngine

    real, simulated = AerEngine.energies_and_gradients, []

    def counting(self, thetas):  # which widths Aer really simulated (the label alone proves nothing)
        simulated.append((self.program.num_qubits, len(thetas)))
        return real(self, thetas)

    monkeypatch.setattr(AerEngine, "energies_and_gradients", counting)
    goal = get_goal("tfim-4")
    circuits = {4: ry_cz(4, 1), 6: ry_cz(6, 1)}
    fast = check_barren_plateau(circuits, goal, samples=30, engine="statevector")
    assert simulated == []
    aer = check_barren_plateau(circuits, goal, samples=30, engine="aer")
    assert aer.engine == "aer" and simulated == [(4, 30), (6, 30)]
    assert aer.variances == pytest.approx(fast.variances, rel=1e-9)



def _norms(build) -> np.ndarray:
    from workers.evaluation.angles import parameter_scales
    from workers.evaluation.simulation.program import compile_circuit

    qc = QuantumCircuit(3)
    t = ParameterVector("t", 2)
    build(qc, t)
    return parameter_scales(compile_circuit(qc))[1]


@pytest.mark.parametrize("label,build,expected", [
    ("copies in a row", lambda qc, t: [qc.ry(t[0], 0), qc.ry(t[0], 0), qc.rx(t[1], 1)], [2.0, 1.0]),
    ("through a commuting cz", lambda qc, t: [qc.rz(t[0], 0), qc.cz(0, 1), qc.rz(t[0], 0), qc.rx(t[1], 1)],
     [2.0, 1.0]),
    ("conjugated by x", lambda qc, t: [qc.ry(t[0], 0), qc.x(0), qc.ry(-t[0], 0), qc.rx(t[1], 1)], [2.0, 1.0]),
    ("rzz moved through cx onto rz", lambda qc, t: [qc.rzz(t[0], 0, 1), qc.cx(0, 1), qc.rz(t[0], 1),
                                                     qc.rx(t[1], 2)], [2.0, 1.0]),
    ("shared across qubits (HVA): not one rotation", lambda qc, t: [qc.rx(t[0], q) for q in range(3)]
     + [qc.rzz(t[1], 0, 1), qc.rzz(t[1], 1, 2)], [3 ** 0.5, 2 ** 0.5]),
    ("blocked by a non-commuting gate", lambda qc, t: [qc.rz(t[0], 0), qc.h(0), qc.ry(t[1], 0), qc.h(0),
                                                        qc.rz(t[0], 0)], [2 ** 0.5, 1.0]),
])
def test_angle_units_count_copies_of_one_rotation_once(label, build, expected):
    """A Parameter's angle-unit norm is taken over the rotations it really drives: copies of one generator (carried
    forward through commuting gates and Clifford conjugations) are fused first, so writing rz(2t) as rz(t) rz(t)
    cannot double the gradient variance the barren-plateau check sees."""
    assert _norms(build) == pytest.approx(expected), label
