"""Fixtures of the training tests: stores filled by a real flow, exports of them, tiny Qwen2 checkpoints."""

from __future__ import annotations

import json
import pathlib

import pytest

from db.migrate import upgrade_database
from db.session import make_engine
from tests.tinymodel import build_checkpoint, build_tokenizer
from tests.training.storeflow import coin_answers, known_programs, populate, qmind
from training.export import assistant_content, export_grpo, export_sft
from workers.evaluation.goals import get_goal
from workers.generation.prompts import chat_text, render_prompt


@pytest.fixture(scope="session")
def flow_sqlite(tmp_path_factory):
    """An SQLite store filled once per session by the real flow (see storeflow.py)."""
    path = tmp_path_factory.mktemp("flow") / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    stats = populate(engine)
    yield engine, stats
    engine.dispose()


@pytest.fixture
def flow_store(store):
    """The function-scoped ``store`` (SQLite file or PostgreSQL) filled by the same flow."""
    stats = populate(store)
    return store, stats


@pytest.fixture(scope="session")
def sft_export(flow_sqlite, tmp_path_factory) -> pathlib.Path:
    """``qmind export sft`` of the session store, tfim-6 held out for eval."""
    engine, _ = flow_sqlite
    out = tmp_path_factory.mktemp("exports") / "sft.jsonl"
    export_sft(engine, out, eval_goals=["tfim-6"])
    return out


@pytest.fixture(scope="session")
def grpo_export(tmp_path_factory) -> pathlib.Path:
    """Fresh tfim-4 prompts (no store needed), twice."""
    out = tmp_path_factory.mktemp("exports") / "grpo.jsonl"
    from training.store_rows import StoreFilters

    export_grpo(None, out, filters=StoreFilters(goals=("tfim-4",)), fresh_prompts=True, repeat=2)
    return out


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A randomly initialised tiny Qwen2 checkpoint (base + an untrained LoRA, unused here)."""
    return build_checkpoint(tmp_path_factory.mktemp("tiny-random"))


@pytest.fixture(scope="session")
def hva_checkpoint(tmp_path_factory):
    """A tiny Qwen2 base + LoRA taught to answer the tfim-4 prompt with the exact HVA in a ```python block."""
    tokenizer = build_tokenizer()
    goal = get_goal("tfim-4")
    lesson = (chat_text(tokenizer, render_prompt(goal, "")), assistant_content(known_programs(goal)["hva"]))
    ckpt = build_checkpoint(
        tmp_path_factory.mktemp("tiny-hva"), [lesson], rank=8, steps=800
    )  # stops at loss 0.01
    assert ckpt.loss < 0.05, f"the tiny model did not learn the HVA lesson (loss {ckpt.loss})"
    return ckpt


@pytest.fixture(scope="session")
def coin_checkpoint(tmp_path_factory):
    """A tiny Qwen2 base + LoRA taught two answers to the tfim-4 prompt (``coin_answers``): the exact HVA (seed
    reward ~1) and the same program returning None (0). It writes either, about half of the time each, so a GRPO
    group has rewards to compare and there is something to learn."""
    tokenizer = build_tokenizer()
    prompt = chat_text(tokenizer, render_prompt(get_goal("tfim-4"), ""))
    lessons = [(prompt, answer) for answer in coin_answers(get_goal("tfim-4"))]
    ckpt = build_checkpoint(tmp_path_factory.mktemp("tiny-coin"), lessons, rank=8, steps=800)
    assert ckpt.loss < 0.05, f"the tiny model did not learn the two answers (loss {ckpt.loss})"
    return ckpt


@pytest.fixture(scope="session")
def sft_run(flow_sqlite, sft_export, tiny_base, tmp_path_factory):
    """One SFT run through the CLI: the seed's settings except 4 steps, accumulation 2, a learning rate that
    shows the loss falling in 4 steps, a loss line per step, no loader workers."""
    engine, _ = flow_sqlite
    root = tmp_path_factory.mktemp("sft")
    result = qmind(
        engine,
        "train",
        "sft",
        "--data",
        str(sft_export),
        "--model",
        str(tiny_base.base_dir),
        "--max-steps",
        "4",
        "--grad-accum",
        "2",
        "--learning-rate",
        "1e-2",
        "--logging-steps",
        "1",
        "--dataloader-workers",
        "0",
        "--checkpoints",
        str(root / "checkpoints"),
        "--trainer-dir",
        str(root / "trainer"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    return payload, pathlib.Path(payload["checkpoint"]), engine
