"""The transformers backend on CUDA: the CUDA-graph engine (with and without torch.compile) answers the taught
prompts exactly, reproducibly. Skipped on hosts without CUDA (never faked)."""

import pytest

from tests.generation.lessons import HEIS_CODE, HEIS_CONTEXT, TFIM_CONTEXT, XY_CODE, XY_CONTEXT
from tests.generation.markers import require_cuda
from tests.tinymodel import SAMPLE_CODE
from workers.evaluation.goals import get_goal
from workers.generation import build_generator
from workers.generation.base import PromptRequest
from workers.generation.config import GeneratorConfig

pytestmark = require_cuda

TFIM = PromptRequest(get_goal("tfim-4"), TFIM_CONTEXT, seed=1)
HEIS = PromptRequest(get_goal("heisenberg-6"), HEIS_CONTEXT, seed=2)
XY = PromptRequest(get_goal("xy-6"), XY_CONTEXT, seed=3)


@pytest.mark.parametrize("compile_step", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_cuda_graph_engine_answers_the_taught_prompts_reproducibly(tiny_checkpoint, compile_step, dtype):
    gen = build_generator(GeneratorConfig(
        generator="transformers", model=str(tiny_checkpoint.base_dir), adapter=str(tiny_checkpoint.adapter_dir),
        temperatures=(0.0, 0.7, 1.5), max_new_tokens=200, device="cuda", dtype=dtype, static_cache=True,
        compile=compile_step))  # the seed's stop sequences, counted only after `def create_ansatz`
    first = gen.generate([TFIM, HEIS, XY])
    assert first[0].settings["engine"] == "graph" and first[0].settings["device"].startswith("cuda")
    assert first[0].candidates[0].raw == "```python\n" + SAMPLE_CODE
    assert first[1].candidates[0].raw == "```python\n" + HEIS_CODE  # PEP 8 blank lines before the def
    assert first[2].candidates[0].raw == "```\n" + XY_CODE  # a bare opening fence
    assert first[1].candidates[0].code == HEIS_CODE and first[2].candidates[0].code == XY_CODE
    again = gen.generate([TFIM, HEIS, XY])  # replays the captured graph on a reset cache
    assert [c.raw for b in again for c in b.candidates] == [c.raw for b in first for c in b.candidates]
