"""``qmind eval-model``: the seed's four rates through the sandboxed cascade, against the seed's targets.

A tiny random model writes no code, so its rates are ~0: those tests check the mechanics (what is counted,
stored, compared). Positive rates come from the procedural generator, a real backend whose programs are
verified Qiskit code; it is not a stand-in for a model, it is the baseline every model is compared with.
"""

from __future__ import annotations

import json

import pytest
import yaml

from db.models import ModelVersion
from db.session import session_scope
from tests.training.storeflow import EVAL_SEED, evaluation_config, known_programs, qmind
from training.evaluate_pool import EvaluationPool, judge
from training.model_eval import (
    RATE_TARGETS,
    Reference,
    _fingerprints_at,
    evaluate_model,
    held_out_goals,
    is_novel,
)
from workers.evaluation.goals import get_goal
from workers.generation.config import GeneratorConfig
from workers.generation.procedural import ProceduralGenerator


@pytest.fixture(scope="module")
def pool():
    with EvaluationPool(workers=2, seed=EVAL_SEED, config=evaluation_config()) as p:
        yield p


def test_the_procedural_baseline_scores_positive_rates_and_programs_from_the_training_data_are_not_novel(
    pool, sft_export
):
    reference = Reference.from_export(sft_export)
    goals = [get_goal("tfim-4"), get_goal("heisenberg-4")]
    # seed 100 on tfim-4 is the request that produced part of the training data (storeflow.py): same programs
    result = evaluate_model(
        ProceduralGenerator(GeneratorConfig()), goals, prompts=4, seed=100, pool=pool, reference=reference
    )
    counts, n = result.counts, result.completions
    assert n == 12  # 4 prompts x the seed's 3 temperatures
    assert counts["syntax_valid"] >= counts["verification_pass"] >= counts["bp_free"] > 0
    assert counts["verification_pass"] >= counts["novel_patterns"]
    assert result.rates == {k: counts[k] / n for k in RATE_TARGETS}
    seen = [s for s in result.samples if s["code_sha256"] in reference.code_hashes]
    assert seen, "the first prompt repeats programs that are in the training split"
    assert not any(s["novel"] for s in seen)
    assert counts["novel_patterns"] <= counts["verification_pass"] - len(seen)
    assert result.targets["syntax_valid"] == {
        "value": result.rates["syntax_valid"],
        "target": "> 95%",
        "met": result.rates["syntax_valid"] > 0.95,
    }
    assert result.identity == {"generator": "procedural", "model": None, "adapter": None}


def test_a_renamed_copy_of_a_training_circuit_is_not_novel_at_any_size(pool):
    goal = get_goal("tfim-4")
    hva = known_programs(goal)["hva"]
    renamed = hva.replace("gamma", "g").replace("beta", "b").replace("qc", "circ")
    other = known_programs(goal)["real_amplitudes_r2"]
    spec = json.dumps(goal.to_spec(), sort_keys=True)
    sandbox = evaluation_config().sandbox
    training = judge(hva, spec, 0, evaluation_config())
    at_six = _fingerprints_at(hva, [6], sandbox)
    reference = Reference(
        "hva",
        frozenset({"sha-of-something-else"}),
        {4: frozenset({training.fingerprint}), 6: frozenset({at_six[6]})},
    )
    copy, different = judge(renamed, spec, 0, evaluation_config()), judge(other, spec, 0, evaluation_config())
    assert copy.verified and different.verified and copy.fingerprint == training.fingerprint
    assert not is_novel(copy, renamed, goal, reference, _fingerprints_at(renamed, [6], sandbox))
    assert is_novel(different, other, goal, reference, _fingerprints_at(other, [6], sandbox))
    # held-out goal of another size: the rebuilt 6-qubit circuit still matches the training one
    six_only = Reference("hva", frozenset(), {6: frozenset({at_six[6]})})
    assert not is_novel(copy, renamed, goal, six_only, _fingerprints_at(renamed, [6], sandbox))


def test_held_out_goals_come_from_the_export_or_the_default_pool(sft_export):
    reference = Reference.from_export(sft_export)
    assert held_out_goals(reference) == ["tfim-6"]  # the export's eval split
    assert held_out_goals(reference, ["h2"]) == ["h2"]
    no_eval = Reference("x", frozenset(), {}, train_goals=("tfim-4",))
    assert "tfim-4" not in held_out_goals(no_eval) and held_out_goals(None)[0] == "tfim-4"


def test_eval_model_on_a_tiny_random_model_reports_the_four_rates_and_stores_them(store, sft_run, tiny_base):
    _, ckpt, _ = sft_run
    result = qmind(
        store,
        "eval-model",
        "--model",
        str(tiny_base.base_dir),
        "--adapter",
        str(ckpt),
        "--prompts",
        "2",
        "--max-new-tokens",
        "16",
        "--workers",
        "0",
        "--bp-samples",
        "60",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["completions"] == 2 and out["goals"] == ["tfim-6"]  # the SFT export's held-out goal
    assert set(RATE_TARGETS) <= set(out["rates"]) and all(0.0 <= out["rates"][k] <= 1.0 for k in RATE_TARGETS)
    assert sum(out["counts"]["statuses"].values()) == 2 and out["reference"] is not None
    config = yaml.safe_load((ckpt / "config.yaml").read_text())
    assert out["targets"]["train_loss"] == {
        "value": config["final_loss"],
        "target": "< 0.5",
        "met": config["final_loss"] < 0.5,
    }
    assert out["targets"]["perplexity"]["value"] == pytest.approx(config["perplexity"])
    with session_scope(store) as s:
        row = s.get(ModelVersion, out["model_version_id"])
        assert row.adapter_path == str(ckpt) and row.metrics["eval_model"]["rates"] == out["rates"]
        assert row.metrics["eval_model"]["completions"] == 2


def test_eval_model_refuses_bad_options_with_a_reason(store):
    bad = qmind(store, "eval-model", "--generator", "procedural", "--prompts", "0", "--json")
    assert bad.exit_code == 2 and "--prompts must be at least 1" in json.loads(bad.stdout)["error"]
    bad = qmind(store, "eval-model", "--generator", "procedural", "--temperatures", "hot", "--json")
    assert bad.exit_code == 2 and "--temperatures" in json.loads(bad.stdout)["error"]
