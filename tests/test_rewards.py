"""Rewards: the seed formula, the shaped components, versioning, and nothing for failures or flagged results."""

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ansatz_library import ry_cz, tfim_hva
from workers.evaluation.barren import check_barren_plateau, scaling_sizes
from workers.evaluation.goals import get_goal
from workers.evaluation.results import (
    STATUS_ERROR,
    STATUS_FLAGGED,
    STATUS_INVALID,
    STATUS_TIMEOUT,
    STATUS_VALID,
    BarrenPlateauResult,
    VerificationResult,
    VQEResult,
)
from workers.evaluation.rewards import (
    REWARD_VERSION,
    WEIGHTS,
    compute_rewards,
    energy_component,
    gate_cost_component,
    normalised_error,
    reference_gap,
)
from workers.evaluation.verify import verify_circuit
from workers.evaluation.vqe import score_vqe

GOAL = get_goal("tfim-4")
VERIFIED = VerificationResult(ok=True, num_qubits=4, depth=10, num_parameters=4, gate_counts={"rzz": 8, "rx": 8},
                              num_two_qubit_gates=8)
NO_BP = BarrenPlateauResult(has_barren_plateau=False, method="scaling")
BP = BarrenPlateauResult(has_barren_plateau=True, method="scaling")


def _vqe(error: float, goal=GOAL, below: bool = False) -> VQEResult:
    exact = goal.exact_energy
    return VQEResult(energy=exact + error, exact_energy=exact, error=error, relative_error=error / abs(exact),
                     chemical_accuracy=None, below_exact=below, evaluations=10, gradient_evaluations=10, seconds=0.1,
                     restarts=1, seeds=(0,), success_fraction=1.0, optimizer="L-BFGS-B")


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 1.0, 3.0])
def test_the_seed_reward_is_one_minus_the_error_in_units_of_the_product_state_gap(fraction):
    gap = reference_gap(GOAL)
    reward = compute_rewards(STATUS_VALID, VERIFIED, NO_BP, _vqe(fraction * gap), GOAL)
    assert reward.seed_reward == pytest.approx(max(0.0, 1.0 - fraction))
    assert reward.version == REWARD_VERSION


@pytest.mark.parametrize("error,expected", [(0.0, 1.0), (0.01, 0.9), (0.05, 0.5), (0.1, 0.0), (0.7, 0.0)])
def test_the_seed_documents_literal_formula_is_kept_beside_it(error, expected):
    reward = compute_rewards(STATUS_VALID, VERIFIED, NO_BP, _vqe(error), GOAL)
    assert reward.seed_reward_literal == pytest.approx(expected)


def test_the_product_state_gap_is_the_tfim_mean_field_one():
    # TFIM at h = 1: the best product state has energy -1.25 per site (sin(theta) = 1/2)
    assert reference_gap(GOAL) == pytest.approx(-1.25 * 4 - GOAL.exact_energy, abs=1e-6)


def test_a_flagged_result_gets_nothing():
    for status, vqe in ((STATUS_FLAGGED, _vqe(-0.3, below=True)), (STATUS_VALID, _vqe(-0.3, below=True))):
        reward = compute_rewards(status, VERIFIED, NO_BP, vqe, GOAL)
        assert reward.seed_reward == 0.0 and reward.shaped_reward == 0.0
        assert reward.components["flagged"] is True


@pytest.mark.parametrize("status", [STATUS_ERROR, STATUS_TIMEOUT])
def test_code_that_never_built_a_circuit_gets_nothing(status):
    reward = compute_rewards(status, None, None, None, GOAL)
    assert reward.seed_reward == 0.0 and reward.shaped_reward == 0.0


def test_an_invalid_circuit_gets_only_partial_validity_credit():
    failed = VerificationResult(ok=False, errors=("circuit has 5 qubits, expected 4",), num_qubits=5)
    reward = compute_rewards(STATUS_INVALID, failed, None, None, GOAL)
    assert reward.seed_reward == 0.0
    assert reward.shaped_reward == pytest.approx(WEIGHTS["validity"] * 0.25)


def test_a_barren_plateau_costs_its_component_and_a_skipped_vqe_costs_the_energy():
    with_bp = compute_rewards(STATUS_VALID, VERIFIED, BP, None, GOAL)
    without = compute_rewards(STATUS_VALID, VERIFIED, NO_BP, _vqe(0.0), GOAL)
    assert with_bp.components["barren_plateau"] == 0.0 and with_bp.components["energy"] == 0.0
    assert with_bp.seed_reward == 0.0 and with_bp.shaped_reward == pytest.approx(WEIGHTS["validity"])
    assert without.shaped_reward - with_bp.shaped_reward == pytest.approx(
        WEIGHTS["barren_plateau"] + WEIGHTS["energy"] + WEIGHTS["gate_cost"] * without.components["gate_cost"])


def test_not_measurable_is_paid_like_a_barren_plateau():
    unmeasured = dataclasses.replace(NO_BP, verdict="not measurable", has_barren_plateau=True)
    a = compute_rewards(STATUS_VALID, VERIFIED, unmeasured, _vqe(0.0), GOAL)
    b = compute_rewards(STATUS_VALID, VERIFIED, dataclasses.replace(BP, verdict="barren plateau"), _vqe(0.0), GOAL)
    assert a.components["barren_plateau"] == 0.0 and a.shaped_reward == b.shaped_reward


def test_a_product_state_level_result_ranks_below_anything_that_goes_beyond_it():
    gap = reference_gap(GOAL)
    shallow = dataclasses.replace(VERIFIED, depth=1, num_two_qubit_gates=0)
    deep = dataclasses.replace(VERIFIED, depth=50, num_two_qubit_gates=100)
    at_product = compute_rewards(STATUS_VALID, shallow, NO_BP, _vqe(gap), GOAL)
    beyond = [compute_rewards(STATUS_VALID, deep, BP, _vqe(f * gap), GOAL) for f in (0.999, 0.9, 0.5, 0.0)]
    assert at_product.shaped_reward == pytest.approx(WEIGHTS["validity"])
    values = [r.shaped_reward for r in beyond]
    assert at_product.shaped_reward < values[0] and values == sorted(values)


def test_the_energy_component_is_logarithmic_in_the_normalised_error():
    assert energy_component(0.0) == 1.0 and energy_component(1e-7) == 1.0
    assert energy_component(1e-6) == pytest.approx(1.0)
    assert energy_component(1e-3) == pytest.approx(0.5)
    assert energy_component(1.0) == 0.0 and energy_component(5.0) == 0.0
    assert energy_component(math.nan) == 0.0
    values = [energy_component(10.0 ** -k) for k in range(7)]
    assert values == sorted(values)


def test_the_normalised_error_is_one_at_the_hartree_fock_energy_of_a_molecule():
    h2 = get_goal("h2")
    hf = h2.hamiltonian.simplify()
    # Hartree-Fock under Jordan-Wigner: the lowest diagonal energy with 2 electrons (qubits 0 and 1 occupied here,
    # or any other 2-electron basis state: the check takes the minimum)
    import itertools

    import numpy as np
    from qiskit.quantum_info import Statevector
    energies = []
    for occupied in itertools.combinations(range(4), 2):
        bits = "".join("1" if q in occupied else "0" for q in reversed(range(4)))
        energies.append(float(np.real(Statevector.from_label(bits).expectation_value(hf))))
    assert normalised_error(min(energies) - h2.exact_energy, h2) == pytest.approx(1.0, abs=1e-6)
    assert normalised_error(-1.0, h2) == 0.0


def test_the_gate_cost_component_falls_with_depth_and_two_qubit_gates():
    shallow = dataclasses.replace(VERIFIED, depth=5, num_two_qubit_gates=4)
    deep = dataclasses.replace(VERIFIED, depth=50, num_two_qubit_gates=100)
    assert gate_cost_component(shallow, GOAL) > gate_cost_component(deep, GOAL)
    assert gate_cost_component(deep, GOAL) == pytest.approx(0.0)
    assert gate_cost_component(dataclasses.replace(VERIFIED, depth=0, num_two_qubit_gates=0), GOAL) == 1.0


@settings(max_examples=200, deadline=None)
@given(status=st.sampled_from([STATUS_VALID, STATUS_INVALID, STATUS_ERROR, STATUS_FLAGGED]),
       error=st.floats(-1, 100, allow_nan=False), depth=st.integers(0, 500), two=st.integers(0, 10_000),
       bp=st.booleans(), below=st.booleans())
def test_rewards_always_stay_in_the_unit_interval(status, error, depth, two, bp, below):
    verification = dataclasses.replace(VERIFIED, depth=depth, num_two_qubit_gates=two)
    reward = compute_rewards(status, verification, BP if bp else NO_BP, _vqe(error, below=below), GOAL)
    assert 0.0 <= reward.seed_reward <= 1.0 and 0.0 <= reward.shaped_reward <= 1.0
    if status != STATUS_VALID or below:
        assert reward.seed_reward == 0.0


def test_a_solved_goal_scores_near_the_top_end_to_end():
    goal = get_goal("tfim-6")
    circuits = {n: tfim_hva(n) for n in scaling_sizes(goal)}
    verification = verify_circuit(circuits[6], goal)
    bp = check_barren_plateau(circuits, goal, samples=50)
    vqe = score_vqe(circuits[6], goal, restarts=2)
    good = compute_rewards(STATUS_VALID, verification, bp, vqe, goal)
    assert good.seed_reward == pytest.approx(1.0, abs=1e-6)
    assert good.components["energy"] == pytest.approx(1.0) and good.shaped_reward > 0.95
    weak_circuit = ry_cz(6, 1)
    weak = compute_rewards(STATUS_VALID, verify_circuit(weak_circuit, goal), bp,
                           score_vqe(weak_circuit, goal, restarts=2), goal)
    assert weak.shaped_reward < good.shaped_reward
    assert json.loads(json.dumps(good.to_dict()))["version"] == REWARD_VERSION


def test_the_verdict_and_the_literal_seed_reward_reach_their_store_columns():
    from workers.evaluation.results import EvaluationResult
    from workers.records import columns

    bp = dataclasses.replace(BP, verdict="not measurable")
    reward = compute_rewards(STATUS_VALID, VERIFIED, bp, _vqe(0.05), GOAL)
    payload = EvaluationResult(status=STATUS_VALID, goal=GOAL.name, verification=VERIFIED, bp=bp, vqe=_vqe(0.05),
                               reward=reward).to_dict()
    cols = columns(json.loads(json.dumps(payload)))
    assert cols["bp_verdict"] == "not measurable" and cols["has_barren_plateau"] is True
    assert cols["seed_reward_literal"] == pytest.approx(0.5) and cols["seed_reward"] == reward.seed_reward
