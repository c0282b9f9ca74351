"""One mapping between evaluation results, store rows and training verdicts (``workers/records.py``): a result of
every status survives result -> row -> result, in memory and through SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select
from storehelpers import add_goal, store  # noqa: F401

from db import writes
from db.models import Evaluation
from db.session import session_scope
from workers import records
from workers.evaluation import results as R

VERIFIED = R.VerificationResult(ok=True, depth=7, num_parameters=12, gate_counts={"ry": 12, "cx": 4},
                                num_two_qubit_gates=4)
BP = R.BarrenPlateauResult(has_barren_plateau=False, method="scaling", sizes=(4, 6, 8), variances=(0.2, 0.1, 0.05),
                           decay_rate=0.35, decay_rate_stderr=0.02, reason="variance decays slowly",
                           verdict="no barren plateau")
VQE = R.VQEResult(energy=-5.2, exact_energy=-5.226, error=0.026, relative_error=0.005, chemical_accuracy=None,
                  below_exact=False, evaluations=300, gradient_evaluations=90, seconds=2.5, restarts=4,
                  seeds=(11, 12, 13, 14), success_fraction=0.5, optimizer="L-BFGS-B", best_parameters=(0.1, -0.2))
REWARD = R.RewardResult(version="r2", seed_reward=0.74, shaped_reward=0.81, components={"energy": 0.5},
                        seed_reward_literal=0.74)
ZERO = R.RewardResult(version="r2", seed_reward=0.0, shaped_reward=0.0, components={"validity": 0.0})
HARDWARE = R.HardwareResult(backend="fake_manila", routed_two_qubit_gates=9, routed_depth=30,
                            routed_two_qubit_depth=6, routed_gate_counts={"ecr": 9, "rz": 40}, active_qubits=4,
                            layout=(2, 0, 1, 3), seed=5, noisy_energy=-4.9, noisy_stderr=0.03, noisy_error=0.3,
                            shots=4000, groups=2, method="density_matrix", seconds=1.5)
GOAL_SET = R.GoalSetResult(members=({"name": "tfim-4", "num_qubits": 4, "error": 0.01},
                                    {"name": "tfim-6", "num_qubits": 6, "error": 0.03}),
                           mean_error=0.02, worst_error=0.03, worst_member="tfim-6", extrapolation_qubits=8,
                           extrapolation_error=0.05, extrapolation_exact_energy=-10.2)
SANDBOX_OK = R.SandboxResult(status="ok", isolation="bwrap")
COMMON = {"seed": 11, "fingerprint": "n:" + "f" * 64, "timings": {"sandbox": 0.4, "verify": 0.25}}

RESULTS = {
    "valid": R.EvaluationResult(status=R.STATUS_VALID, stage="done", verification=VERIFIED, bp=BP, vqe=VQE,
                                reward=REWARD, sandbox=SANDBOX_OK, reuse_key="r:" + "a" * 64, **COMMON),
    "valid-reused": R.EvaluationResult(status=R.STATUS_VALID, stage="done", verification=VERIFIED, bp=BP,
                                       vqe=dataclasses.replace(VQE, seconds=0.0), reward=REWARD, sandbox=SANDBOX_OK,
                                       reused_from="evaluation 3 (code 0123456789ab)", reuse_key="r:" + "b" * 64,
                                       **COMMON),
    "valid-hardware-set": R.EvaluationResult(status=R.STATUS_VALID, stage="done", verification=VERIFIED, bp=BP,
                                             vqe=VQE, reward=REWARD, hardware=HARDWARE, goal_set=GOAL_SET,
                                             sandbox=SANDBOX_OK, **COMMON),
    "flagged": R.EvaluationResult(status=R.STATUS_FLAGGED, stage="vqe", errors=("energy below the exact energy",),
                                  verification=VERIFIED, bp=BP, vqe=dataclasses.replace(VQE, below_exact=True),
                                  reward=ZERO, sandbox=SANDBOX_OK, **COMMON),
    "invalid": R.EvaluationResult(status=R.STATUS_INVALID, stage="verify", errors=("depth 90 exceeds 40",),
                                  verification=dataclasses.replace(VERIFIED, ok=False, errors=("depth 90 exceeds 40",)),
                                  reward=ZERO, sandbox=SANDBOX_OK, **COMMON),
    "error": R.EvaluationResult(status=R.STATUS_ERROR, stage="sandbox", errors=("NameError: name 'x'",),
                                reward=ZERO, sandbox=R.SandboxResult(status="error", isolation="bwrap"), seed=11),
    "timeout": R.EvaluationResult(status=R.STATUS_TIMEOUT, stage="sandbox", errors=("wall time 10 s",),
                                  reward=ZERO, sandbox=R.SandboxResult(status="timeout", isolation="rlimits")),
    "resource": R.EvaluationResult(status=R.STATUS_RESOURCE, stage="vqe", errors=("VQE ran out of memory",),
                                   verification=VERIFIED, bp=BP, reward=ZERO, sandbox=SANDBOX_OK, **COMMON),
    "failed": R.EvaluationResult(status=R.STATUS_FAILED, stage="queue", seed=2,
                                 errors=("gave up after 3 attempts that never finished",)),
}


def test_every_status_has_a_round_trip_case():
    assert {r.status for r in RESULTS.values()} == set(R.STATUSES)


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_a_result_survives_result_to_columns_to_result(name):
    result = RESULTS[name]
    assert records.from_row(records.columns(result)) == result
    assert records.columns(records.from_row(records.columns(result))) == records.columns(result)


def test_a_result_of_every_status_survives_the_store(store):
    with session_scope(store) as s:
        goal_id = add_goal(s)
        for name, result in RESULTS.items():
            key = writes.EvaluationKey(writes.code_sha256(name), goal_id, result.scorer_version)
            writes.record_evaluation(s, key, records.columns(result))
    with session_scope(store) as s:
        rows = {r.code_sha256: r for r in s.execute(select(Evaluation)).scalars()}
        for name, result in RESULTS.items():
            assert records.from_row(rows[writes.code_sha256(name)]) == result, name


def test_a_stored_score_is_reusable_only_with_vqe_or_a_barren_plateau():
    cols = dict(records.columns(RESULTS["valid"]), id=7, code_sha256="ab" * 32)
    bp, vqe, source = records.reusable_scores(cols)
    assert bp == BP and vqe == dataclasses.replace(VQE, seconds=0.0) and source == f"evaluation 7 (code {'ab' * 6})"
    no_vqe = dict(cols, vqe_energy=None)
    assert records.reusable_scores(no_vqe) is None  # scored without VQE for another reason: score it again
    plateau = dict(no_vqe, has_barren_plateau=True, bp_verdict="barren plateau")
    assert records.reusable_scores(plateau)[:2] == (dataclasses.replace(BP, has_barren_plateau=True,
                                                                        verdict="barren plateau"), None)


def test_the_training_verdict_says_built_verified_and_pays_only_valid_results():
    valid = records.verdict(RESULTS["valid"], "ab" * 32)
    assert (valid.built, valid.verified, valid.has_barren_plateau, valid.vqe_error) == (True, True, False, 0.026)
    assert valid.reward("seed") == 0.74 and valid.reward("shaped") == 0.81
    broken = records.verdict(RESULTS["error"])
    assert not broken.built and not broken.verified and broken.reward("seed") == 0.0
    invalid = records.verdict(RESULTS["invalid"])
    assert invalid.built and not invalid.verified and invalid.has_barren_plateau is None
    flagged = records.verdict(RESULTS["flagged"])
    assert flagged.reward("shaped") == 0.0 and flagged.status == R.STATUS_FLAGGED
