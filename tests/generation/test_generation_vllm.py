"""vLLM backends. What needs vllm and a GPU runs only where both exist (skipped here, never faked); the request
building is pure and tested everywhere. The server client is tested only through those pure functions: a test
HTTP server pretending to be vLLM would be a fake vLLM."""

import json

import pytest

from tests.generation.lessons import HEIS_CODE, HEIS_CONTEXT, TFIM_CONTEXT, XY_CODE, XY_CONTEXT
from tests.generation.markers import require_cuda, require_vllm
from workers.evaluation.goals import get_goal
from workers.generation import build_generator
from workers.generation.base import PromptRequest, candidate_seed
from workers.generation.config import GeneratorConfig
from workers.generation.errors import GenerationError
from workers.generation.prompts import SYSTEM_PROMPT, render_prompt
from workers.generation.vllm_backend import (
    MAX_CONTINUATIONS,
    RowProgress,
    VLLMServerGenerator,
    continuation_payload,
    continuation_seed,
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
                      "max_tokens": 1024, "stop": ["\n```\n"], "include_stop_str_in_output": True, "seed": 42}
    literal = sampling_kwargs(GeneratorConfig(stop_after_definition=False), 0.7, 42)
    assert literal["stop"] == ["```\n", "\n\n\n"] and "include_stop_str_in_output" not in literal
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
    assert payloads[4]["seed"] == candidate_seed(2, 1) and payloads[4]["stop"] == ["\n```\n"]
    assert payloads[4]["include_stop_str_in_output"] is True
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


def outputs_of(config, *outputs):
    """A row fed the given (text, tokens, reason) outputs of successive requests, as vLLM would return them."""
    payload = server_payloads(REQUESTS[:1], config)[0]
    row = RowProgress(payload["temperature"], payload["seed"])
    bodies = []
    for text, tokens, reason in outputs:
        assert row.result is None, "the row finished before all outputs were used"
        bodies.append(continuation_payload(payload, row, config))
        row.add(text, tokens, reason, config)
    return row, bodies


def test_a_fenced_answer_is_cut_before_its_closing_fence_in_one_request():
    row, bodies = outputs_of(GeneratorConfig(), ("```python\n" + HEIS_CODE + "```\n", 180, "stop"))
    assert row.result == ("```python\n" + HEIS_CODE, 180, "stop") and len(bodies) == 1
    assert "continue_final_message" not in bodies[0]


def test_blank_lines_after_the_function_end_it_although_vllm_was_not_given_them():
    tail = "\n\n\nif __name__ == '__main__':\n    print(create_ansatz(4))\n"
    row, _ = outputs_of(GeneratorConfig(), (HEIS_CODE.rstrip("\n") + tail, 220, "eos"))
    assert row.result == (HEIS_CODE.rstrip("\n"), 220, "stop")


def test_a_fence_before_the_code_does_not_end_the_completion_it_is_continued():
    config = GeneratorConfig()
    row, bodies = outputs_of(config, ("Install it:\n```bash\npip install qiskit\n```\n", 14, "stop"),
                             # the server continues the text without its trailing newline: the model writes it
                             ("\nThen the ansatz:\n```\n", 6, "stop"),  # a bare fence after prose
                             ("\nfrom qiskit import QuantumCircuit\n" + XY_CODE.split("\n", 1)[1] + "```\n", 190,
                              "stop"))
    text, tokens, reason = row.result
    assert text == ("Install it:\n```bash\npip install qiskit\n```\nThen the ansatz:\n```\n"
                    "from qiskit import QuantumCircuit\n" + XY_CODE.split("\n", 1)[1])
    assert (tokens, reason, row.rounds) == (210, "stop", 3)
    second = bodies[1]
    assert second["messages"][:2] == bodies[0]["messages"]
    assert second["messages"][2] == {"role": "assistant", "content": "Install it:\n```bash\npip install qiskit\n```"}
    assert second["continue_final_message"] is True and second["add_generation_prompt"] is False
    assert second["max_tokens"] == config.max_new_tokens - 14
    assert bodies[2]["max_tokens"] == config.max_new_tokens - 20
    assert [b["seed"] for b in bodies] == [continuation_seed(bodies[0]["seed"], r) for r in range(3)]
    assert len({b["seed"] for b in bodies}) == 3 and bodies[0]["seed"] == candidate_seed(1, 0)


def test_continuations_end_when_the_tokens_or_the_rounds_run_out():
    config = GeneratorConfig(max_new_tokens=30)
    row, _ = outputs_of(config, ("```bash\nls\n```\n", 12, "stop"), ("```bash\nls\n```\n", 18, "stop"))
    assert row.result[1:] == (30, "length")
    many = [("```bash\nls\n```\n", 1, "stop")] * (MAX_CONTINUATIONS + 1)
    row, bodies = outputs_of(GeneratorConfig(), *many)
    assert row.result[2] == "length" and len(bodies) == MAX_CONTINUATIONS + 1


def test_the_literal_rule_takes_vllms_answer_as_it_is():
    config = GeneratorConfig(stop_after_definition=False)
    row, bodies = outputs_of(config, ("```python\nfrom qiskit import QuantumCircuit", 9, "stop"))
    assert row.result == ("```python\nfrom qiskit import QuantumCircuit", 9, "stop") and len(bodies) == 1


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


@require_vllm
@require_cuda
def test_vllm_keeps_the_pep8_and_bare_fence_answers_whole(tiny_checkpoint):
    gen = build_generator(GeneratorConfig(generator="vllm", model=str(tiny_checkpoint.base_dir),
                                          adapter=str(tiny_checkpoint.adapter_dir), temperatures=(0.0,),
                                          max_new_tokens=200, dtype="float32", gpu_memory_utilization=0.3,
                                          max_model_len=1024))
    heis, xy = gen.generate([PromptRequest(get_goal("heisenberg-6"), HEIS_CONTEXT, seed=2),
                             PromptRequest(get_goal("xy-6"), XY_CONTEXT, seed=3)])
    assert heis.candidates[0].raw == "```python\n" + HEIS_CODE and heis.candidates[0].code == HEIS_CODE
    assert xy.candidates[0].raw == "```\n" + XY_CODE and xy.candidates[0].code == XY_CODE
