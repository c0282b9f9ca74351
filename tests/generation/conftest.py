"""Fixtures of the generation tests: a tiny Qwen2 checkpoint taught two lessons, and the vllm/CUDA skip markers."""

from __future__ import annotations

import importlib.util

import pytest

from tests.generation.lessons import HEIS_CONTEXT, LESSON_HEIS, LESSON_TFIM, TFIM_CONTEXT
from tests.tinymodel import build_checkpoint, build_tokenizer
from workers.evaluation.goals import get_goal
from workers.generation.prompts import chat_text, render_prompt

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


require_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (GPU hosts only)")
require_cuda = pytest.mark.skipif(not _has_cuda(), reason="no CUDA device")

@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny Qwen2 base + LoRA adapter that answer the tfim-4 and heisenberg-6 prompts with the two lessons."""
    tokenizer = build_tokenizer()
    lessons = [(chat_text(tokenizer, render_prompt(get_goal("tfim-4"), TFIM_CONTEXT)), LESSON_TFIM),
               (chat_text(tokenizer, render_prompt(get_goal("heisenberg-6"), HEIS_CONTEXT)), LESSON_HEIS)]
    ckpt = build_checkpoint(tmp_path_factory.mktemp("tiny-qwen2"), lessons, rank=8)
    assert ckpt.loss < 0.05, f"the tiny model did not learn its lessons (loss {ckpt.loss})"
    return ckpt
