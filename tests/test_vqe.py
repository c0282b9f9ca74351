"""VQE scoring: known ansaetze reach known energies; reports are complete; bugs and exploits are caught."""

import dataclasses
import json
import time

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from tests.ansatz_library import h2_ansatz, h2_hardware_efficient, heisenberg_hva, ry_cz, tfim_hva
from workers.evaluation.errors import EvaluationError
from workers.evaluation.goals import CHEMICAL_ACCURACY, Goal, get_goal
from workers.evaluation.simulation.statevector import StatevectorEngine
from workers.evaluation.vqe import VQESettings, initial_point, score_vqe


@pytest.mark.parametrize("n", [4, 6])
def test_the_tfim_hamiltonian_variational_ansatz_reaches_the_exact_energy(n):
    goal = get_goal(f"tfim-{n}")
    result = score_vqe(tfim_hva(n), goal, seed=0)
    assert result.error < 1e-6
    assert not result.below_exact
    assert result.energy == pytest.approx(goal.exact_energy, abs=1e-6)
    assert result.relative_error == pytest.approx(result.error / abs(goal.exact_energy))
    assert result.chemical_accuracy is None  # not a molecule


def test_the_heisenberg_variational_ansatz_reaches_the_exact_energy():
    goal = get_goal("heisenberg-6", allowed_gates="rxx,ryy,rzz,x,h,cx")
    assert score_vqe(heisenberg_hva(6), goal).error < 1e-6


@pytest.mark.parametrize("builder", [h2_ansatz, h2_hardware_efficient])
def test_h2_ansaetze_reach_chemical_accuracy(builder):
    result = score_vqe(builder(), get_goal("h2"))
    assert result.chemical_accuracy is True
    assert result.error < CHEMICAL_ACCURACY
    assert result.exact_energy == pytest.approx(-1.137306035753, abs=1e-9)


def test_a_limited_ansatz_reports_an_honest_positive_error():
    goal = get_goal("tfim-8")
    result = score_vqe(ry_cz(8, 1), goal, restarts=2)
    assert 1e-3 < result.error < 1.0  # real-amplitude product-ish states cannot reach the critical ground state
    assert not result.below_exact


def test_the_report_is_complete_and_serialises():
    goal = get_goal("tfim-4")
    result = score_vqe(tfim_hva(4), goal, restarts=3, seed=5)
    assert result.restarts == 3 and result.seeds == (5, 6, 7)
    assert len(result.restart_energies) == 3 and min(result.restart_energies) == result.energy
    assert 0 < result.success_fraction <= 1
    assert result.evaluations > 3 and result.gradient_evaluations == result.evaluations
    assert result.circuit_executions >= result.evaluations
    assert result.optimizer == "L-BFGS-B" and result.engine == "statevector"
    assert result.check_energy == pytest.approx(result.energy, abs=1e-9)
    assert len(result.best_parameters) == 4 and result.seconds > 0
    data = json.loads(json.dumps(result.to_dict()))
    assert data["energy"] == pytest.approx(result.energy)


def test_the_best_parameters_reproduce_the_energy_on_the_circuit_as_built():
    from qiskit.quantum_info import Statevector

    goal = get_goal("tfim-4")
    circuit = tfim_hva(4)
    result = score_vqe(circuit, goal, restarts=1)
    state = Statevector(circuit.assign_parameters(list(result.best_parameters)))
    assert float(np.real(state.expectation_value(goal.hamiltonian))) == pytest.approx(result.energy, abs=1e-10)


def test_the_same_seed_gives_the_same_result_and_another_seed_another_one():
    goal = get_goal("tfim-6")
    one = score_vqe(ry_cz(6, 1), goal, restarts=2, seed=1)
    two = score_vqe(ry_cz(6, 1), goal, restarts=2, seed=1)
    assert one.restart_energies == two.restart_energies and one.best_parameters == two.best_parameters
    other = score_vqe(ry_cz(6, 1), goal, restarts=2, seed=2)  # the seed reaches the starting points
    assert other.seeds == (2, 3) and other.best_parameters != one.best_parameters


def test_restart_zero_starts_near_the_identity_and_the_others_anywhere():
    near = initial_point(50, 0, seed=3)
    anywhere = initial_point(50, 1, seed=3)
    assert np.all(np.abs(near) <= 0.1)
    assert anywhere.max() > 1.0 and np.all((anywhere >= 0) & (anywhere < 2 * np.pi))


def test_the_aer_engine_finds_the_same_optimum():
    goal = get_goal("tfim-4")
    aer = score_vqe(tfim_hva(4), goal, restarts=1, engine="aer")
    assert aer.engine == "aer" and aer.error < 1e-6
    # one Estimator call per gradient: every evaluation simulated 1 + 2m bindings (m = 4 layers... of angles)
    assert aer.circuit_executions > aer.evaluations


class _WrongExact(Goal):
    """A goal whose exact energy is (deliberately) too high: stands in for an eigensolver bug."""

    @property
    def exact_energy(self) -> float:
        return super().exact_energy + 0.5


def test_an_energy_below_the_exact_energy_is_flagged():
    base = get_goal("tfim-4")
    goal = _WrongExact(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    result = score_vqe(tfim_hva(4), goal, restarts=1)
    assert result.below_exact
    assert result.error < 0


def test_a_simulator_that_disagrees_with_qiskit_fails_the_self_check(monkeypatch):
    real = StatevectorEngine.energies_and_gradients

    def buggy(self, thetas):  # an injected simulator bug: energies 0.1 too low
        energy, grad = real(self, thetas)
        return energy - 0.1, grad

    monkeypatch.setattr(StatevectorEngine, "energies_and_gradients", buggy)
    with pytest.raises(EvaluationError, match="self-check failed"):
        score_vqe(tfim_hva(4), get_goal("tfim-4"), restarts=1)


def test_a_spent_time_budget_reports_the_best_so_far(monkeypatch):
    """The budget runs out in the middle of the descent (deterministically: the scorer's clock jumps past it
    during the sixth batch of energies); the report is the lowest energy the optimiser saw, not the first or
    the last."""
    from types import SimpleNamespace

    from workers.evaluation import vqe

    real, seen, calls, skew = StatevectorEngine.energies_and_gradients, [], [], [0.0]

    def clock_jumps_in_the_sixth_batch(self, thetas):
        energies, grads = real(self, thetas)
        seen.extend(float(e) for e in energies)
        calls.append(len(thetas))
        if len(calls) == 6:
            skew[0] = 1000.0
        return energies, grads

    monkeypatch.setattr(StatevectorEngine, "energies_and_gradients", clock_jumps_in_the_sixth_batch)
    monkeypatch.setattr(vqe, "time", SimpleNamespace(perf_counter=lambda: time.perf_counter() + skew[0]))
    goal = get_goal("tfim-6")
    result = score_vqe(ry_cz(6, 2), goal, settings=VQESettings(max_seconds=100.0, restarts=4))
    assert result.truncated and calls == [4] * 6 and result.restarts == 4  # stopped at the first check past it
    assert np.isfinite(result.energy) and result.energy == min(seen) < seen[0]


@pytest.mark.parametrize("add, message", [
    (QuantumCircuit.measure_all, "the circuit has classical bits; only purely quantum circuits can be simulated"),
    (lambda qc: qc.reset(1), "instruction 'reset' is not a standard unitary gate"),
])
def test_a_circuit_with_a_measurement_or_reset_is_refused_by_the_scorer(add, message):
    # the scorer's own refusal: without it the measurement was dropped and only the later check against Qiskit
    # failed, by accident, with another EvaluationError
    qc = QuantumCircuit(4)
    qc.ry(Parameter("t"), 0)
    add(qc)
    with pytest.raises(EvaluationError, match=message):
        score_vqe(qc, get_goal("tfim-4"))


def test_lockstep_rounds_hold_exactly_the_restarts_still_running():
    from workers.evaluation.simulation.lockstep import run_restarts

    batches: list[int] = []

    def evaluate(rows):
        batches.append(len(rows))
        return rows.sum(axis=1), 2 * rows

    answers: dict[int, list[float]] = {}

    def work(r, lockstep):  # restart r asks r + 2 times
        answers[r] = [lockstep.request(r, np.full(3, r + k))[0] for k in range(r + 2)]

    rounds = run_restarts(3, work, evaluate)
    assert batches == [3, 3, 2, 1] and rounds == 4
    assert answers == {r: [3.0 * (r + k) for k in range(r + 2)] for r in range(3)}


def test_an_error_in_one_restart_stops_the_others():
    from workers.evaluation.simulation.lockstep import run_restarts

    def work(r, lockstep):
        for k in range(10**6):
            if r == 1 and k == 3:
                raise ValueError("restart 1 broke")
            lockstep.request(r, np.zeros(2))

    with pytest.raises(ValueError, match="restart 1 broke"):
        run_restarts(4, work, lambda rows: (np.zeros(len(rows)), np.zeros_like(rows)))


def test_the_round_driver_visits_the_same_points_as_scipy_minimize():
    from scipy.optimize import minimize

    from workers.evaluation import lbfgsb
    from workers.evaluation.simulation.engines import make_engine

    assert lbfgsb.available()
    circuit, goal = ry_cz(6, 2), get_goal("tfim-6")
    engine = make_engine(circuit, goal.hamiltonian)
    x0 = initial_point(circuit.num_parameters, 1, 0)
    options = {"maxiter": 1000, "maxfun": 4000, "ftol": 1e-12, "gtol": 1e-6}
    seen: list[np.ndarray] = []

    def objective(x):
        seen.append(np.array(x))
        energy, grad = engine.energies_and_gradients(x[None, :])
        return float(energy[0]), grad[0]

    reference = minimize(objective, x0, jac=True, method="L-BFGS-B", options=options)
    run, asked = lbfgsb.Restart(x0, **options), []
    while (x := run.ask()) is not None:
        asked.append(x)
        run.tell(*objective(x))
    assert len(asked) == reference.nfev == len(seen) // 2 and run.nit == reference.nit
    assert np.array_equal(np.array(asked), np.array(seen[:len(asked)]))


def test_rounds_in_one_thread_and_lockstep_threads_give_identical_results(monkeypatch):
    from workers.evaluation import lbfgsb

    circuit, goal = ry_cz(6, 2), get_goal("tfim-6")
    rounds = score_vqe(circuit, goal, restarts=3, seed=2)
    monkeypatch.setattr(lbfgsb, "available", lambda: False)
    threads = score_vqe(circuit, goal, restarts=3, seed=2)
    assert rounds.restart_energies == threads.restart_energies
    assert rounds.best_parameters == threads.best_parameters and rounds.evaluations == threads.evaluations
