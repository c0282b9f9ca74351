"""Every SQL example in docs/store.md runs, read-only, on SQLite and PostgreSQL and returns what it says."""

from __future__ import annotations

import pytest
from storehelpers import add_batch, add_goal, new_run, sql_examples, verdict

from db import writes
from db.queries import run_read_only
from db.session import make_engine, session_scope
from workers.records import columns

EXAMPLES = sql_examples()
CODES = [f"def create_ansatz(n):\n    return {i}\n" for i in range(6)]


@pytest.fixture
def research(store):
    """Two runs on tfim-6 by two model versions, a repeated circuit, failures, a pending evaluation."""
    with session_scope(store) as s:
        goal_id = add_goal(s, "tfim-6")
        other = add_goal(s, "h2")
        base = writes.upsert_model_version(s, name="base", base_model="qwen")
        tuned = writes.upsert_model_version(s, name="sft1", base_model="qwen", adapter_sha256="e" * 64)
        r1, r2 = new_run(s, model_version_id=base), new_run(s, model_version_id=tuned)
        add_batch(s, run_id=r1, goal_id=goal_id, codes=CODES[0:3], model_version_id=base)
        add_batch(s, run_id=r2, goal_id=goal_id, codes=[CODES[0], CODES[3], None], model_version_id=tuned,
                  iteration=1)
        add_batch(s, run_id=r2, goal_id=other, codes=[CODES[4], CODES[5], CODES[5]], model_version_id=tuned)
        sha = writes.code_sha256
        writes.record_evaluation(s, writes.EvaluationKey(sha(CODES[0]), goal_id, "v"), columns(verdict(error=0.01)))
        writes.record_evaluation(s, writes.EvaluationKey(sha(CODES[1]), goal_id, "v"), columns(verdict(error=0.002)))
        writes.record_evaluation(s, writes.EvaluationKey(sha(CODES[2]), goal_id, "v"), columns(verdict("invalid", error=None)))
        writes.record_evaluation(s, writes.EvaluationKey(sha(CODES[3]), goal_id, "v"),
                                 columns(verdict(error=0.5, bp=True)))
        writes.record_evaluation(s, writes.EvaluationKey(sha(CODES[4]), other, "v"), columns(verdict(error=0.0001)))
        writes.begin_attempt(s, writes.EvaluationKey(sha(CODES[5]), other, "v"), max_attempts=3)
    return make_engine(store.url, read_only=True)


def rows(engine, name):
    result = run_read_only(engine, EXAMPLES[name])
    return [dict(zip(result.columns, r)) for r in result.rows]


def test_the_docs_have_the_examples_the_issue_asks_for():
    assert {"best-k-per-goal", "pass-rate-per-model", "pass-rate-per-temperature", "bp-free-per-iteration",
            "repeated-circuits"} <= set(EXAMPLES)


def test_the_readme_examples_are_the_tested_ones():
    """The README's SQL blocks are copies of docs/store.md's (which the tests below run on both databases)."""
    import pathlib

    readme = sql_examples(pathlib.Path(__file__).resolve().parents[1] / "README.md")
    assert {"best-per-goal", "pass-rate-per-temperature", "bp-free-per-iteration", "repeated-circuits"} <= set(readme)
    for name, sql in readme.items():
        assert sql == EXAMPLES.get(name), f"README.md's '{name}' differs from docs/store.md's"


def test_every_documented_query_runs_on_both_databases(research):
    for name, sql in EXAMPLES.items():
        result = run_read_only(research, sql)
        assert result.columns, name


def test_best_k_per_goal_with_and_without_the_view_agree(research):
    view = rows(research, "best-k-per-goal")
    plain = rows(research, "best-k-per-goal-indexed")
    assert [r["code_sha256"] for r in view] == [r["code_sha256"] for r in plain] == [
        writes.code_sha256(CODES[1]), writes.code_sha256(CODES[0]), writes.code_sha256(CODES[3])]
    assert [r["rank"] for r in view] == [1, 2, 3]


def test_best_per_goal_has_one_row_per_goal(research):
    assert [(r["goal_name"], r["vqe_error"]) for r in rows(research, "best-per-goal")] == [
        ("h2", pytest.approx(0.0001)), ("tfim-6", pytest.approx(0.002))]


def test_the_documented_aggregates_say_what_they_promise(research):
    by_model = {r["model_version"]: r for r in rows(research, "pass-rate-per-model")}
    assert (by_model["base"]["judged"], by_model["base"]["valid"]) == (3, 2)
    assert (by_model["sft1"]["candidates"], by_model["sft1"]["judged"], by_model["sft1"]["valid"]) == (6, 4, 3)
    bp = {(r["run_id"], r["iteration"], r["goal_name"]): r for r in rows(research, "bp-free-per-iteration")}
    assert bp[(2, 1, "tfim-6")]["bp_measured"] == 2 and bp[(2, 1, "tfim-6")]["bp_free_rate"] == 0.5
    repeated = rows(research, "repeated-circuits")
    assert [(r["goal_name"], r["runs"], r["candidates"]) for r in repeated] == [("tfim-6", 2, 2)]
    best = rows(research, "best-code")
    assert best[0]["code"] == CODES[1] and best[0]["temperature"] == 0.7 and best[0]["model_version"] == "base"
    stuck = rows(research, "stuck-evaluations")
    assert len(stuck) == 1 and stuck[0]["attempts"] == 1
    failures = {(r["model_version"], r["status"]): r["candidates"] for r in rows(research, "failures-by-status")}
    assert failures[("sft1", "no-code")] == 1 and failures[("base", "invalid")] == 1
    assert failures[("sft1", "pending")] == 2
