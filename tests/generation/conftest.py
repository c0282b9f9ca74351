"""Fixture of the generation tests: a tiny Qwen2 checkpoint taught three lessons (tests/generation/lessons.py)."""

from __future__ import annotations

import pytest

from tests.generation.lessons import (
    HEIS_CONTEXT,
    LESSON_HEIS,
    LESSON_TFIM,
    LESSON_XY,
    TFIM_CONTEXT,
    XY_CONTEXT,
)
from tests.tinymodel import build_checkpoint, build_tokenizer
from workers.evaluation.goals import get_goal
from workers.generation.prompts import chat_text, render_prompt


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny Qwen2 base + LoRA adapter that answer the tfim-4, heisenberg-6 and xy-6 prompts with the lessons."""
    tokenizer = build_tokenizer()
    lessons = [(chat_text(tokenizer, render_prompt(get_goal("tfim-4"), TFIM_CONTEXT)), LESSON_TFIM),
               (chat_text(tokenizer, render_prompt(get_goal("heisenberg-6"), HEIS_CONTEXT)), LESSON_HEIS),
               (chat_text(tokenizer, render_prompt(get_goal("xy-6"), XY_CONTEXT)), LESSON_XY)]
    ckpt = build_checkpoint(tmp_path_factory.mktemp("tiny-qwen2"), lessons, rank=8)
    assert ckpt.loss < 0.05, f"the tiny model did not learn its lessons (loss {ckpt.loss})"
    return ckpt
