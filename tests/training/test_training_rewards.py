"""GRPO reward functions: the sandboxed cascade judges each completion; max(0, 1 - eps) per goal."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import select

from db.models import Evaluation
from db.session import session_scope
from db.writes import code_sha256
from tests.training.storeflow import EVAL_SEED, evaluation_config, known_programs
from training.errors import TrainingError
from training.evaluate_pool import EvaluationPool
from training.export import assistant_content
from training.rewards import CircuitReward
from workers.evaluation.goals import get_goal
from workers.evaluation.rewards import reference_gap

GOAL = get_goal("tfim-4")
SPEC = json.dumps(GOAL.to_spec(), sort_keys=True)
PROGRAMS = known_programs(GOAL)
SYNTAX_ERROR = "```python\ndef create_ansatz(num_qubits):\n    return QuantumCircuit(num_qubits\n```"
PROSE = "I would use a hardware-efficient ansatz with a few layers."
RAISES = "```python\ndef create_ansatz(num_qubits):\n    raise RuntimeError('no circuit today')\n```"


def conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def reward():
    with CircuitReward("seed", workers=2, seed=EVAL_SEED, config=evaluation_config()) as fn:
        yield fn


def _stored(engine, code: str) -> Evaluation:
    with session_scope(engine) as s:
        return (
            s.execute(select(Evaluation).where(Evaluation.code_sha256 == code_sha256(code))).scalars().one()
        )


def test_the_exact_hva_for_tfim4_earns_a_seed_reward_of_one(reward):
    [value] = reward(
        prompts=[None], completions=[conversational(assistant_content(PROGRAMS["hva"]))], goal_spec=[SPEC]
    )
    assert value == pytest.approx(1.0, abs=1e-6)
    assert reward.last[0].status == "valid" and reward.last[0].vqe_error < 1e-7


def test_an_imperfect_ansatz_earns_one_minus_its_stored_error_in_product_state_gaps(reward, flow_sqlite):
    engine, _ = flow_sqlite
    stored = _stored(
        engine, PROGRAMS["real_amplitudes_r2"]
    )  # judged by the real flow, same seed and settings
    assert stored.status == "valid" and 0.001 < stored.vqe_error < 0.1, (
        "RealAmplitudes(2) is imperfect on tfim-4"
    )
    [value] = reward(completions=[assistant_content(PROGRAMS["real_amplitudes_r2"])], goal_spec=[SPEC])
    assert value == pytest.approx(max(0.0, 1.0 - stored.vqe_error / reference_gap(GOAL)), abs=1e-9)
    assert value == pytest.approx(stored.seed_reward, abs=1e-9) and value < 0.99
    assert stored.seed_reward_literal == pytest.approx(max(0.0, 1.0 - 10.0 * stored.vqe_error), abs=1e-9)


def test_code_that_fails_verification_or_does_not_parse_or_run_earns_zero(reward):
    completions = [assistant_content(PROGRAMS["forbidden_gate"]), SYNTAX_ERROR, PROSE, RAISES, ""]
    values = reward(completions=[conversational(c) for c in completions], goal_spec=[SPEC] * len(completions))
    assert values == [0.0] * 5
    assert [v.status for v in reward.last] == ["invalid", "no-code", "no-code", "error", "no-code"]
    assert "swap" in " ".join(reward.last[0].errors)


def test_the_shaped_reward_is_the_scorers_and_still_zero_for_a_failed_verification(flow_sqlite):
    engine, _ = flow_sqlite
    with CircuitReward("shaped", workers=0, seed=EVAL_SEED, config=evaluation_config()) as shaped:
        values = shaped(
            completions=[
                assistant_content(PROGRAMS["real_amplitudes_r2"]),
                assistant_content(PROGRAMS["forbidden_gate"]),
            ],
            goal_spec=[SPEC, SPEC],
        )
    assert values[0] == pytest.approx(_stored(engine, PROGRAMS["real_amplitudes_r2"]).shaped_reward, abs=1e-9)
    invalid = _stored(engine, PROGRAMS["forbidden_gate"])
    assert (
        invalid.status == "invalid" and invalid.shaped_reward > 0
    )  # the scorer gives partial validity credit
    assert values[1] == 0.0  # training does not


def test_a_candidate_that_hangs_is_stopped_by_the_sandbox_and_earns_zero():
    from workers.evaluation.sandbox import SandboxConfig

    config = dataclasses.replace(evaluation_config(), sandbox=SandboxConfig(wall_seconds=3))
    hang = "```python\nwhile True:\n    pass\n\ndef create_ansatz(num_qubits):\n    pass\n```"
    with CircuitReward("seed", workers=0, config=config) as fn:
        assert fn(completions=[hang], goal_spec=[SPEC]) == [0.0]
        assert fn.last[0].status == "timeout"


def test_repeated_completions_in_a_group_are_judged_once_and_the_pool_agrees_with_in_process_judging(monkeypatch):
    from training import evaluate_pool

    group = [assistant_content(PROGRAMS["hva"])] * 3 + [assistant_content(PROGRAMS["real_amplitudes_r2"])]
    submitted = []
    with EvaluationPool(workers=2, seed=EVAL_SEED, config=evaluation_config()) as pool:
        executor = pool._pool()
        real_submit = executor.submit
        monkeypatch.setattr(executor, "submit",
                            lambda fn, *args: submitted.append(args[0]) or real_submit(fn, *args))
        parallel = pool.judge_completions(group, [SPEC] * 4)
        again = pool.judge_completions(group[:1], [SPEC])  # a later group repeating a judged program
        assert len(pool._cache) == 2 and again == parallel[:1]
    # each distinct program went to a worker once, the repeats and the later group to none
    assert len(submitted) == len(set(submitted)) == 2
    real_judge, judged = evaluate_pool.judge, []
    monkeypatch.setattr(evaluate_pool, "judge", lambda code, *rest: judged.append(code) or real_judge(code, *rest))
    with EvaluationPool(workers=0, seed=EVAL_SEED, config=evaluation_config()) as pool:
        serial = pool.judge_completions(group, [SPEC] * 4)
    assert judged == submitted  # in process: the same two judgements, in the same order
    assert [v.seed_reward for v in parallel] == [v.seed_reward for v in serial]
    assert parallel[0] == parallel[1] == parallel[2] and parallel[0].seed_reward > 0.99 > parallel[3].seed_reward


def test_a_reward_call_without_goal_columns_says_which_export_it_needs(reward):
    with pytest.raises(TrainingError, match="qmind export grpo"):
        reward(completions=["x"])


def test_the_reward_function_is_named_for_trl_and_logs_its_rates(reward):
    logged = {}
    reward(
        completions=[PROSE, assistant_content(PROGRAMS["hva"])],
        goal_spec=[SPEC, SPEC],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert reward.__name__ == "seed_reward"
    assert logged.pop("reward_seconds") > 0  # the time spent on rewards (GRPO reports its share of a step)
    assert logged == {"code_extracted": 0.5, "verified": 0.5, "valid": 0.5}
