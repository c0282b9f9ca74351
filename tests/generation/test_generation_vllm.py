"""vLLM backends. What needs vllm and a GPU runs only where both exist (skipped here, never faked); the request
building is pure and tested everywhere. The server client is tested only through those pure functions: a test
HTTP server pretending to be vLLM would be a fake vLLM."""

import json

import pytest

from tests.generation.lessons import TFIM_CONTEXT
from tests.generation.markers import require_cuda, require_vllm
from workers.evaluation.goals import get_goal
from workers.generation import build_generator
from workers.generation.base import PromptRequest, candidate_seed
from workers.generation.config import GeneratorConfig
from workers.generation.errors import GenerationError
from workers.generation.prompts import SYSTEM_PROMPT, render_prompt
from workers.generation.vllm_backend import (
    VLLMServerGenerator,
    lora_int_id,
    max_lora_rank,
    parse_server_response,
    plan_rows,
    sampling_kwargs,
    server_payloads,
)

REQUESTS = [PromptRequest(get_goal("tfim-4"), "", seed=1), PromptRequest(get_goal("xy-6"), "ctx", seed=2)]


def test_each_prompt_and_temperature_gets_its_own_sampling_params_with_its_seed():
    config = GeneratorConfig(generator="vllm")
    rows = plan_rows(REQUESTS, config)
    assert [(i, t) for i, t, _ in rows] == [(0, 0.5), (0, 0.7), (0, 0.9), (1, 0.5), (1, 0.7), (1, 0.9)]
    assert [s for _, _, s in rows] == [candidate_seed(r, j) for r in (1, 2) for j in range(3)]
    params = sampling_kwargs(config, 0.7, 42)
    assert params == {"n": 1, "temperature": 0.7, "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.1,
                      "max_tokens": 1024, "stop": ["```\n", "\n\n\n"], "seed": 42}
    assert sampling_kwargs(GeneratorConfig(top_k=0), 0.7, 1)["top_k"] == -1  # vLLM's "no top-k"
    assert sampling_kwargs(GeneratorConfig(do_sample=False), 0.9, 1)["temperature"] == 0.0


def test_the_lora_id_comes_from_the_model_version_or_a_stable_hash_of_the_path(tmp_path):
    a, b = tmp_path / "v1", tmp_path / "v2"
    assert lora_int_id(str(a), 17) == 17
    assert lora_int_id(str(a)) == lora_int_id(str(a)) != lora_int_id(str(b))
    assert 1 <= lora_int_id(str(b)) < 2**31
    with pytest.raises(GenerationError, match="positive"):
        lora_int_id(str(a), 0)


def test_max_lora_rank_is_the_adapters_rank_rounded_up_to_one_vllm_serves(tiny_checkpoint):
    from workers.generation.hf_backend import adapter_rank

    assert adapter_rank(str(tiny_checkpoint.adapter_dir)) == tiny_checkpoint.rank == 8
    assert [max_lora_rank(r) for r in (8, 16, 24, 32, 33, 64, 300)] == [8, 16, 32, 32, 64, 64, 320]
    with pytest.raises(GenerationError, match="exceeds"):
        max_lora_rank(1024)


def test_server_requests_carry_the_adapter_name_the_chat_messages_and_the_sampling_fields(tmp_path):
    adapter = tmp_path / "quantum-mind-v3"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 32}))
    config = GeneratorConfig(generator="vllm-server", adapter=str(adapter))
    payloads = server_payloads(REQUESTS, config)
    assert len(payloads) == 6
    first = payloads[0]
    assert first["model"] == "quantum-mind-v3"
    assert first["messages"] == [{"role": "system", "content": SYSTEM_PROMPT},
                                 {"role": "user", "content": render_prompt(REQUESTS[0].goal, "")}]
    assert [p["temperature"] for p in payloads] == [0.5, 0.7, 0.9] * 2
    assert payloads[4]["seed"] == candidate_seed(2, 1) and payloads[4]["stop"] == ["```\n", "\n\n\n"]
    assert server_payloads(REQUESTS, GeneratorConfig(server_model="base"))[0]["model"] == "base"
    assert server_payloads(REQUESTS, GeneratorConfig())[0]["model"] == "Qwen/Qwen2.5-Coder-7B-Instruct"


def test_server_responses_are_read_for_text_tokens_and_why_they_stopped():
    body = {"choices": [{"message": {"content": "```python\nx = 1\n"}, "finish_reason": "stop",
                         "stop_reason": "```\n"}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 7}}
    assert parse_server_response(body) == ("```python\nx = 1\n", 7, "stop")
    body["choices"][0]["stop_reason"] = None
    assert parse_server_response(body)[2] == "eos"
    body["choices"][0]["finish_reason"] = "length"
    assert parse_server_response(body)[2] == "length"
    with pytest.raises(GenerationError, match="unexpected response"):
        parse_server_response({"error": "model not found"})


def test_an_unreachable_server_is_reported_with_how_to_start_one():
    # a closed local port: the client's own error path, no server involved
    gen = VLLMServerGenerator(GeneratorConfig(generator="vllm-server", server_url="http://127.0.0.1:9/v1",
                                              server_timeout_s=2))
    with pytest.raises(GenerationError, match="vllm serve"):
        gen.generate(REQUESTS[:1])


def test_without_vllm_the_in_process_backend_says_what_to_install():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    with pytest.raises(GenerationError, match="needs vllm"):
        build_generator(GeneratorConfig(generator="vllm")).generate(REQUESTS[:1])


@require_vllm
@require_cuda
def test_vllm_generates_three_candidates_per_prompt_in_one_call_with_the_lora(tiny_checkpoint):
    gen = build_generator(GeneratorConfig(generator="vllm", model=str(tiny_checkpoint.base_dir),
                                          adapter=str(tiny_checkpoint.adapter_dir), temperatures=(0.0, 0.7, 0.9),
                                          max_new_tokens=200, dtype="float32", gpu_memory_utilization=0.3,
                                          max_model_len=1024))
    gen.load()
    calls = []
    original = gen.llm.generate

    def counting(prompts, params, **kwargs):
        calls.append((len(prompts), len(params), kwargs.get("lora_request")))
        return original(prompts, params, **kwargs)

    gen.llm.generate = counting
    batches = gen.generate([PromptRequest(get_goal("tfim-4"), TFIM_CONTEXT, seed=1), REQUESTS[1]])
    assert len(calls) == 1 and calls[0][:2] == (6, 6) and calls[0][2].lora_int_id == gen.lora_request.lora_int_id
    assert [c.temperature for c in batches[0].candidates] == [0.0, 0.7, 0.9]
    assert batches[0].candidates[0].code is not None  # the taught answer, greedy
