"""Fixtures of the generation tests: a tiny Qwen2 checkpoint taught two lessons, and the vllm/CUDA skip markers."""

from __future__ import annotations

import importlib.util

import pytest

from tests.tinymodel import SAMPLE_CODE, build_checkpoint, build_tokenizer
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

# Lesson 1: the tfim-4 prompt is answered with SAMPLE_CODE in a fenced block, then prose after the closing fence.
# Lesson 2: the heisenberg-6 prompt (with a memory context) is answered PEP 8 style: two blank lines before the def.
TFIM_CONTEXT = ""
HEIS_CONTEXT = "best so far: RY + CZ ring, energy -9.7"
HEIS_CODE = SAMPLE_CODE.replace("from math import pi\n\n", "from math import pi\n\n\n").replace("qc.ry(", "qc.rx(")
LESSON_TFIM = "```python\n" + SAMPLE_CODE + "```\nThis ansatz is shallow and hardware-efficient."
LESSON_HEIS = "```python\n" + HEIS_CODE + "```\nDone."


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny Qwen2 base + LoRA adapter that answer the tfim-4 and heisenberg-6 prompts with the two lessons."""
    tokenizer = build_tokenizer()
    lessons = [(chat_text(tokenizer, render_prompt(get_goal("tfim-4"), TFIM_CONTEXT)), LESSON_TFIM),
               (chat_text(tokenizer, render_prompt(get_goal("heisenberg-6"), HEIS_CONTEXT)), LESSON_HEIS)]
    ckpt = build_checkpoint(tmp_path_factory.mktemp("tiny-qwen2"), lessons, rank=8)
    assert ckpt.loss < 0.05, f"the tiny model did not learn its lessons (loss {ckpt.loss})"
    return ckpt
