"""``qmind export sft|grpo|rewards`` on stores filled by a real flow (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from db.models import Candidate, Evaluation
from db.session import make_engine, session_scope
from scheduler.cli import app as cli_app
from training.dataset_files import load_rows, meta_path, read_meta
from training.errors import EmptyExportError, TrainingError
from training.export import export_grpo, export_rewards, export_sft, split_goals
from training.store_rows import SFTQuality, StoreFilters
from workers.evaluation.goals import get_goal, goal_from_spec
from workers.generation.extract import extract_code
from workers.generation.prompts import SYSTEM_PROMPT


def _qualifying(engine, max_error: float) -> list[Evaluation]:
    with session_scope(engine) as s:
        return list(
            s.execute(
                select(Evaluation).where(
                    Evaluation.status == "valid",
                    Evaluation.has_barren_plateau.is_(False),
                    Evaluation.vqe_error <= max_error,
                )
            ).scalars()
        )


def test_sft_rows_are_verified_barren_plateau_free_candidates_within_the_error_threshold(
    flow_store, tmp_path
):
    engine, _ = flow_store
    result = export_sft(engine, tmp_path / "sft.jsonl", quality=SFTQuality(max_error=0.05))
    rows = list(load_rows(result.path))
    good = {e.id: e for e in _qualifying(engine, 0.05)}
    assert rows and all(r["evaluation_id"] in good for r in rows)
    assert all(r["vqe_error"] == good[r["evaluation_id"]].vqe_error for r in rows)  # full float precision
    assert min(r["vqe_error"] for r in rows) < 1e-9  # the exact HVA (pandas' JSON writer would print 0.0)
    assert {(good[i].goal_id, good[i].circuit_fingerprint) for i in good} == {
        (good[r["evaluation_id"]].goal_id, r["circuit_fingerprint"]) for r in rows
    }  # every qualifying circuit
    with session_scope(engine) as s:
        judged = s.execute(select(Evaluation.status, Evaluation.vqe_error)).all()
    assert any(st != "valid" or (e is not None and e > 0.05) for st, e in judged), (
        "the flow has rows to filter"
    )


def test_sft_messages_are_system_user_assistant_and_the_assistant_turn_extracts_back_to_the_code(
    flow_sqlite, sft_export
):
    engine, _ = flow_sqlite
    with session_scope(engine) as s:
        code_of = {c.id: c.code for c in s.execute(select(Candidate)).scalars()}
        prompts = {c.id: c.batch_id for c in s.execute(select(Candidate)).scalars()}
    for row in load_rows(sft_export):
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert row["messages"][0]["content"] == SYSTEM_PROMPT
        assert "TASK: Generate a variational ansatz" in row["messages"][1]["content"]
        assistant = row["messages"][2]["content"]
        assert assistant.startswith("```python\n") and assistant.endswith("\n```")
        assert extract_code(assistant).code == code_of[row["candidate_id"]]
        assert row["candidate_id"] in prompts


def test_sft_keeps_one_row_per_circuit_per_goal_the_lowest_error_one(flow_sqlite, sft_export):
    rows = list(load_rows(sft_export))
    keys = [(r["goal"], r["circuit_fingerprint"] or r["code_sha256"]) for r in rows]
    assert len(keys) == len(set(keys))
    meta = read_meta(sft_export)
    assert meta["counts"]["duplicates_removed"] == meta["counts"]["passed_quality"] - len(rows)
    assert meta["counts"]["duplicates_removed"] >= 1, (
        "the flow's HVA is also proposed by the procedural generator"
    )


def test_the_split_keeps_every_goal_on_one_side_and_repeats_with_the_same_seed(flow_sqlite, tmp_path):
    engine, _ = flow_sqlite
    a = export_sft(engine, tmp_path / "a.jsonl", quality=SFTQuality(max_error=1.0), eval_fraction=0.4, seed=7)
    b = export_sft(engine, tmp_path / "b.jsonl", quality=SFTQuality(max_error=1.0), eval_fraction=0.4, seed=7)
    sides: dict[str, set] = {}
    for row in load_rows(a.path):
        sides.setdefault(row["goal"], set()).add(row["split"])
    assert all(len(s) == 1 for s in sides.values()) and len(sides) >= 2
    assert {"train", "eval"} == set().union(*sides.values())
    assert a.meta["split"] == b.meta["split"]
    assert [r["split"] for r in load_rows(a.path)] == [r["split"] for r in load_rows(b.path)]


def test_goal_split_rules():
    names = [f"g{i}" for i in range(10)]
    train, held = split_goals(names, eval_fraction=0.2, seed=1)
    assert len(held) == 2 and not set(train) & set(held) and sorted(train + held) == names
    assert split_goals(names, eval_fraction=0.2, seed=1) == (train, held)
    assert split_goals(["only"], eval_fraction=0.5, seed=1) == (["only"], [])
    assert split_goals(names, eval_fraction=0.0, seed=1) == (names, [])
    assert split_goals(names, eval_fraction=0.1, seed=1, eval_goals=["g3"])[1] == ["g3"]
    with pytest.raises(TrainingError, match="have no rows"):
        split_goals(names, eval_fraction=0.1, seed=1, eval_goals=["nope"])


def test_exports_load_in_trl_dataset_formats(sft_export, grpo_export, tmp_path, flow_sqlite):
    from datasets import load_dataset
    from trl.data_utils import is_conversational

    from tests.tinymodel import build_tokenizer

    sft = load_dataset("json", data_files=str(sft_export), split="train")
    grpo = load_dataset("json", data_files=str(grpo_export), split="train")
    assert is_conversational(sft[0]) and is_conversational({"prompt": grpo[0]["prompt"]})
    tokenizer = build_tokenizer()
    text = tokenizer.apply_chat_template(sft[0]["messages"], tokenize=False)
    assert "<|im_start|>assistant\n```python" in text
    engine, _ = flow_sqlite
    parquet = export_rewards(engine, tmp_path / "rewards.parquet")
    rewards = load_dataset("parquet", data_files=parquet.path, split="train")
    assert parquet.meta["format"] == "parquet" and len(rewards) == parquet.rows
    assert is_conversational({"prompt": rewards[0]["prompt"], "completion": rewards[0]["completion"]})


def test_grpo_rows_carry_the_goal_columns_that_rebuild_the_goal(flow_store, tmp_path):
    engine, _ = flow_store
    result = export_grpo(engine, tmp_path / "grpo.jsonl")
    rows = list(load_rows(result.path))
    assert {r["goal"] for r in rows} == {"tfim-4", "heisenberg-4", "tfim-6"}
    for row in rows:
        goal = goal_from_spec(json.loads(row["goal_spec"]))
        reference = get_goal(row["goal"])
        assert goal.spec_hash == reference.spec_hash == row["spec_hash"]
        assert row["num_qubits"] == goal.num_qubits and row["max_depth"] == goal.max_depth
        assert row["allowed_gates"] == list(goal.allowed_gates)
        assert row["exact_energy"] == pytest.approx(goal.exact_energy, abs=1e-9)
        assert [[t["label"], t["coeff"]] for t in row["hamiltonian"]] == [list(t) for t in goal.pauli_terms()]
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert f"Number of qubits: {goal.num_qubits}" in row["prompt"][1]["content"]
    assert len(rows) == 6  # two distinct prompts (memory contexts) per goal, as the loop asked them


def test_grpo_fresh_prompts_need_no_store_for_builtin_goals(grpo_export):
    rows = list(load_rows(grpo_export))
    assert len(rows) == 2 and {r["goal"] for r in rows} == {"tfim-4"}
    assert "CONTEXT:\nNone yet." in rows[0]["prompt"][1]["content"]
    assert read_meta(grpo_export)["counts"]["prompts_per_goal"] == {"tfim-4": 1}


def test_rewards_export_has_every_judged_candidate_with_its_reward_components(flow_store, tmp_path):
    engine, stats = flow_store
    result = export_rewards(engine, tmp_path / "rewards.jsonl")
    rows = list(load_rows(result.path))
    assert len(rows) == stats["candidates"]  # every candidate is judged: evaluated, or no code
    statuses = {r["status"] for r in rows}
    assert {"valid", "invalid", "no-code"} <= statuses
    with session_scope(engine) as s:
        stored = {e.id: e for e in s.execute(select(Evaluation)).scalars()}
    for row in rows:
        assert row["completion"][0]["role"] == "assistant" and row["temperature"] in (0.5, 0.7, 0.9)
        assert row["model_version"] == "procedural"
        if row["status"] == "no-code":
            assert row["seed_reward"] == 0.0 and row["evaluation_id"] is None
            continue
        ev = stored[row["evaluation_id"]]
        assert (row["seed_reward"], row["shaped_reward"]) == (ev.seed_reward, ev.shaped_reward)
        assert json.loads(row["reward_components"]) == ev.reward_components


def test_the_meta_file_records_query_filters_counts_store_without_password_time_and_commit(store, tmp_path):
    from tests.training.storeflow import populate

    populate(store)
    url = store.url
    if url.get_backend_name() == "postgresql":  # trust authentication accepts (and ignores) any password
        url = url.set(password="s3cret-pw")
    engine = make_engine(url)
    result = export_sft(engine, tmp_path / "sft.jsonl", filters=StoreFilters(goals=("tfim-4", "tfim-6")))
    engine.dispose()
    meta = json.loads(meta_path(result.path).read_text())
    assert "s3cret-pw" not in json.dumps(meta)
    assert meta["store"] == url.render_as_string(hide_password=True)
    assert "FROM candidates" in meta["query"] and "'tfim-4'" in meta["query"]
    assert meta["filters"]["goals"] == ["tfim-4", "tfim-6"] and meta["quality"] == {
        "max_error": 0.05,
        "allow_barren_plateau": False,
    }
    assert meta["rows"] == result.rows and meta["created_at"].endswith("+00:00")
    assert meta["sha256"] == hashlib.sha256(pathlib.Path(result.path).read_bytes()).hexdigest()  # as written
    assert set(meta["counts"]) >= {"candidates_by_status", "passed_quality", "after_dedup"}
    head = subprocess.run(["git", "-C", str(pathlib.Path(__file__).parent), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=False)
    if head.returncode == 0:  # the commit, or None outside a checkout
        assert meta["git"]["commit"] == head.stdout.strip() and isinstance(meta["git"]["dirty"], bool)
    else:
        assert meta["git"] is None


def test_an_export_that_matches_nothing_says_why(flow_sqlite, tmp_path):
    engine, _ = flow_sqlite
    with pytest.raises(EmptyExportError, match="candidates by status"):
        export_sft(
            engine,
            tmp_path / "x.jsonl",
            quality=SFTQuality(max_error=0.0),
            filters=StoreFilters(goals=("heisenberg-4",)),
        )
    assert not (tmp_path / "x.jsonl").exists() and not meta_path(tmp_path / "x.jsonl").exists()
    with pytest.raises(TrainingError, match="does not exist"):
        export_sft(engine, tmp_path / "missing" / "x.jsonl")


def test_training_refuses_an_export_edited_after_it_was_written(sft_export, tmp_path):
    copy = tmp_path / "edited.jsonl"
    copy.write_text(sft_export.read_text() + "\n")
    meta_path(copy).write_text(meta_path(sft_export).read_text())
    with pytest.raises(TrainingError, match="changed after it was exported"):
        read_meta(copy)
    with pytest.raises(TrainingError, match="no edited.jsonl.meta.json|meta.json beside it"):
        meta_path(copy).unlink()
        read_meta(copy)


def test_the_export_cli_prints_one_json_object_and_refuses_bad_filters(flow_sqlite, tmp_path):
    engine, _ = flow_sqlite
    env = {"QMIND_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    out = tmp_path / "sft.parquet"
    result = CliRunner().invoke(
        cli_app, ["export", "sft", "--out", str(out), "--eval-goals", "tfim-6", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["format"] == "parquet" and payload["rows"] == len(load_rows(out))
    assert payload["split"]["eval_goals"] == ["tfim-6"] and payload["meta_file"].endswith(".meta.json")
    bad = CliRunner().invoke(
        cli_app, ["export", "rewards", "--out", str(tmp_path / "r.jsonl"), "--runs", "x", "--json"], env=env
    )
    assert bad.exit_code == 2 and "--runs must be comma-separated run ids" in json.loads(bad.stdout)["error"]
    grpo = CliRunner().invoke(
        cli_app, ["export", "grpo", "--out", str(tmp_path / "g.jsonl"), "--no-store", "--json"], env=env
    )
    assert grpo.exit_code == 2 and "--no-store needs --fresh-prompts" in json.loads(grpo.stdout)["error"]
