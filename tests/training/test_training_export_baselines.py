"""Exports of a store the discovery loop filled, baselines included: the baseline batches (prompt text
``baselines``, written without asking a model) never become SFT or GRPO rows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import GenerationBatch
from db.session import session_scope
from tests.test_discovery import FAST_ENV, run_loop
from training.dataset_files import load_rows
from training.export import export_grpo, export_sft
from training.store_rows import SFTQuality
from workers.evaluation.goals import get_goal
from workers.generation.prompts import is_rendered_prompt, render_prompt


@pytest.fixture
def looped_store(store, tmp_path, monkeypatch):
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)
    run_loop(store, ["tfim-4"], tmp_path, iterations=1, prompts_per_iteration=1)
    return store


def test_a_rendered_prompt_is_recognised_and_the_baselines_label_is_not():
    prompt = render_prompt(get_goal("tfim-4"), "Best so far: HVA")
    assert is_rendered_prompt(prompt) and is_rendered_prompt(render_prompt(get_goal("h2"), ""))
    for text in ("baselines", "", None, prompt[:-1], "x" + prompt):
        assert not is_rendered_prompt(text)


def test_exports_of_a_store_that_ran_the_loops_baselines_hold_only_rendered_prompts(looped_store, tmp_path):
    with session_scope(looped_store) as s:
        prompts = set(s.execute(select(GenerationBatch.prompt)).scalars())
    assert "baselines" in prompts  # the loop wrote its baseline batch
    # loose quality so the baselines' exact HVA would pass it: only the prompt filter can keep it out
    sft = export_sft(looped_store, tmp_path / "sft.jsonl", quality=SFTQuality(max_error=10.0,
                                                                             allow_barren_plateau=True))
    rows = list(load_rows(sft.path))
    assert rows and all(is_rendered_prompt(r["messages"][1]["content"]) for r in rows)
    assert all(not r["messages"][2]["content"].startswith("```python\n# baseline") for r in rows)
    assert sft.meta["counts"]["not_a_rendered_prompt"] > 0  # baselines passed the quality bar and were dropped
    grpo = export_grpo(looped_store, tmp_path / "grpo.jsonl")
    grpo_rows = list(load_rows(grpo.path))
    assert grpo_rows and all(is_rendered_prompt(r["prompt"][1]["content"]) for r in grpo_rows)
    assert len(grpo_rows) == 1  # the one prompt iteration 0 asked; the baseline batch is not a prompt
