"""The transformers backend on a tiny Qwen2 checkpoint + LoRA built locally, loaded through build_generator."""

import pytest
import torch

from tests.generation.lessons import HEIS_CODE, HEIS_CONTEXT, TFIM_CONTEXT, XY_CODE, XY_CONTEXT
from tests.tinymodel import SAMPLE_CODE
from workers.evaluation.goals import get_goal
from workers.generation import build_generator
from workers.generation.base import PromptRequest, candidate_seed
from workers.generation.config import GeneratorConfig
from workers.generation.decoding import SamplingSpec, eos_token_ids, finish_row, generate_ids, generate_rows
from workers.generation.errors import GenerationError
from workers.generation.graph_decoder import GraphDecoder
from workers.generation.prompts import chat_text, render_prompt

TFIM = PromptRequest(get_goal("tfim-4"), TFIM_CONTEXT, seed=1)
HEIS = PromptRequest(get_goal("heisenberg-6"), HEIS_CONTEXT, seed=2)
XY = PromptRequest(get_goal("xy-6"), XY_CONTEXT, seed=3)


def generator(ckpt, **overrides):
    settings = {"generator": "transformers", "model": str(ckpt.base_dir), "adapter": str(ckpt.adapter_dir),
                "max_new_tokens": 200, "device": "cpu", **overrides}  # the CPU path (CUDA: test_generation_cuda)
    return build_generator(GeneratorConfig(**settings))


def count_generate_calls(gen):
    gen.load()
    calls = []
    original = gen.model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return original(*args, **kwargs)

    gen.model.generate = counting
    return calls


def test_one_generate_call_yields_three_candidates_per_prompt_at_their_temperatures(tiny_checkpoint):
    gen = generator(tiny_checkpoint, max_new_tokens=24)
    assert gen.model is None  # loaded lazily, on the first call
    calls = count_generate_calls(gen)
    batches = gen.generate([TFIM, HEIS])
    assert len(calls) == 1 and calls[0][0] == 6  # 2 prompts x 3 temperatures, one batched call
    assert [b.goal_name for b in batches] == ["tfim-4", "heisenberg-6"]
    for batch, request in zip(batches, (TFIM, HEIS)):
        assert [c.temperature for c in batch.candidates] == [0.5, 0.7, 0.9]
        assert [c.seed for c in batch.candidates] == [candidate_seed(request.seed, i) for i in range(3)]
        assert batch.prompt == render_prompt(request.goal, request.memory_context)
        assert batch.prompt_tokens > 100 and batch.completion_tokens == sum(c.tokens for c in batch.candidates) > 0
        assert batch.seconds > 0 and batch.settings["top_p"] == 0.9 and batch.settings["top_k"] == 50
        assert batch.adapter == str(tiny_checkpoint.adapter_dir) and batch.generator == "transformers"
    model = gen.model
    gen.generate([TFIM])
    assert gen.model is model and len(calls) == 2  # loaded once


def test_each_prompt_gets_its_own_answer_despite_left_padding_and_the_closing_fence_ends_it(tiny_checkpoint):
    gen = generator(tiny_checkpoint, temperatures=(0.0,))
    tfim, heis = gen.generate([TFIM, HEIS])
    (a,), (b,) = tfim.candidates, heis.candidates
    # "```\n" stops the tfim answer before the closing fence and the prose after it
    assert a.raw == "```python\n" + SAMPLE_CODE and a.code == SAMPLE_CODE and a.finish_reason == "stop"
    # PEP 8's two blank lines come before `def create_ansatz`: "\n\n\n" does not count there, the fence does
    assert b.raw == "```python\n" + HEIS_CODE and b.code == HEIS_CODE and b.finish_reason == "stop"


def test_applied_literally_the_blank_line_stop_cuts_the_pep8_answer_before_its_function(tiny_checkpoint):
    (batch,) = generator(tiny_checkpoint, temperatures=(0.0,), stop_after_definition=False).generate([HEIS])
    (b,) = batch.candidates
    assert b.raw == "```python\n" + HEIS_CODE.split("\n\n\n")[0] and b.finish_reason == "stop"
    assert b.code is None and "stop sequence" in b.extraction_error
    assert batch.settings["stop_after_definition"] is False


def test_a_bare_opening_fence_does_not_end_the_completion(tiny_checkpoint):
    (batch,) = generator(tiny_checkpoint, temperatures=(0.0,)).generate([XY])
    (c,) = batch.candidates
    assert c.raw == "```\n" + XY_CODE and c.code == XY_CODE and c.finish_reason == "stop"
    (literal,) = generator(tiny_checkpoint, temperatures=(0.0,), stop_after_definition=False).generate([XY])
    assert literal.candidates[0].raw == "" and literal.candidates[0].code is None  # "```\n" matched at once


def test_rows_of_one_generate_call_stop_each_at_their_own_effective_stop(tiny_checkpoint):
    gen = generator(tiny_checkpoint)
    gen.load()
    tok = gen.tokenizer
    untaught = PromptRequest(get_goal("lih"), "", seed=4)  # a molecule, unlike every lesson: no `def create_ansatz`
    texts = [chat_text(tok, render_prompt(r.goal, r.memory_context)) for r in (TFIM, HEIS, XY, untaught)]
    spec = SamplingSpec(temperatures=[0.0] * 4, seeds=[1, 2, 3, 4], max_new_tokens=200, stop=("```\n", "\n\n\n"))
    eos = eos_token_ids(gen.model, tok)
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    generated, _ = generate_ids(gen.model, enc["input_ids"], enc["attention_mask"], spec, eos_ids=eos,
                                pad_token_id=tok.pad_token_id, tokenizer=tok)
    rows = [finish_row(g, tok, stop=spec.stop, eos_ids=eos + [tok.pad_token_id]) for g in generated]
    assert [r.text for r in rows[:3]] == ["```python\n" + SAMPLE_CODE, "```python\n" + HEIS_CODE,
                                          "```\n" + XY_CODE]
    assert [r.finish_reason for r in rows[:3]] == ["stop"] * 3
    # the untaught row writes whatever the tiny model samples; it ends by its own rule, not by the others' stops:
    # either at one of its own stop strings or at max_new_tokens
    untaught_row = rows[3]
    assert untaught_row.text not in {r.text for r in rows[:3]}
    if untaught_row.finish_reason == "stop":
        assert tok.decode(generated[3][:untaught_row.tokens]).endswith(spec.stop)
    else:
        assert untaught_row.tokens == spec.max_new_tokens
    for row, ids in zip(rows[:3], generated[:3]):
        stop_token = row.tokens - 1  # the token that completed the closing fence
        assert tok.decode(ids[:row.tokens]).endswith("```\n") and not tok.decode(ids[:stop_token]).endswith("```\n")
        assert set(ids[row.tokens:]) <= {tok.pad_token_id}  # this row stopped there; the batch went on
    assert len({r.tokens for r in rows[:3]}) == 3  # three different stopping points in one call
    assert min(r.tokens for r in rows[:3]) < len(generated[0])  # the call went on after its first row stopped
    decoded, _ = GraphDecoder(gen.model, tok, cuda_graph=False, check_every=8).decode(texts, spec, eos_ids=eos)
    assert decoded == rows  # the graph engine's host check stops the same rows at the same tokens


@pytest.mark.parametrize("engine", ["generate", "graph"])
def test_when_no_stop_sequence_occurs_the_outputs_are_those_of_a_call_without_stops(tiny_checkpoint, engine):
    gen = generator(tiny_checkpoint)
    gen.load()
    tok = gen.tokenizer
    texts = [chat_text(tok, render_prompt(r.goal, r.memory_context)) for r in (TFIM, HEIS) for _ in range(3)]
    eos = eos_token_ids(gen.model, tok)

    def run(**stops):
        spec = SamplingSpec(temperatures=[0.0, 1.0, 2.5] * 2, seeds=[1, 2, 3, 4, 5, 6], max_new_tokens=48, **stops)
        if engine == "graph":
            return GraphDecoder(gen.model, tok, cuda_graph=False, check_every=8).decode(texts, spec, eos_ids=eos)[0]
        return generate_rows(gen.model, tok, texts, spec, eos_ids=eos)[0]

    plain = run(stop=())
    never = ("NEVER-STOP-HERE",)
    assert not any(never[0] in r.text for r in plain) and {r.finish_reason for r in plain} <= {"eos", "length"}
    assert run(stop=never) == plain
    assert run(stop=never, stop_after_definition=False) == plain


def test_temperature_zero_is_deterministic_and_high_temperature_varies_over_seeds(tiny_checkpoint):
    gen = generator(tiny_checkpoint, temperatures=(0.0, 3.0), max_new_tokens=32)
    batches = gen.generate([PromptRequest(TFIM.goal, TFIM_CONTEXT, seed=s) for s in range(6)])
    cold = {b.candidates[0].raw for b in batches}
    hot = {b.candidates[1].raw for b in batches}
    assert len(cold) == 1 and len(hot) >= 4


def test_the_same_seed_reproduces_the_same_candidates(tiny_checkpoint):
    gen = generator(tiny_checkpoint, max_new_tokens=32, temperatures=(2.0, 2.5, 3.0))  # hot: seeds matter
    first = [c.raw for c in gen.generate([TFIM])[0].candidates]
    again = [c.raw for c in gen.generate([TFIM])[0].candidates]
    other = [c.raw for c in gen.generate([PromptRequest(TFIM.goal, TFIM_CONTEXT, seed=99)])[0].candidates]
    assert first == again and first != other


@pytest.mark.parametrize(("after_definition", "max_new_tokens"), [(True, 200), (False, 60)])
def test_the_static_cache_engine_decodes_exactly_what_generate_decodes(tiny_checkpoint, after_definition,
                                                                        max_new_tokens):
    gen = generator(tiny_checkpoint)
    gen.load()
    tok = gen.tokenizer
    texts = [chat_text(tok, render_prompt(r.goal, r.memory_context)) for r in (TFIM, HEIS) for _ in range(3)]
    spec = SamplingSpec(temperatures=[0.0, 0.9, 2.0] * 2, seeds=[1, 2, 3, 4, 5, 6], max_new_tokens=max_new_tokens,
                        stop=("```\n", "\n\n\n"), stop_after_definition=after_definition)
    eos = eos_token_ids(gen.model, tok)
    reference, _ = generate_rows(gen.model, tok, texts, spec, eos_ids=eos)
    decoded, stats = GraphDecoder(gen.model, tok, cuda_graph=False, check_every=8).decode(texts, spec, eos_ids=eos)
    assert decoded == reference
    assert stats.engine == "static" and stats.rows == 6
    # rows of one call end at different steps (the hard case for a static cache); whether they also end in
    # different ways depends on what the tiny random model samples, so only the steps are required to differ
    assert len({r.tokens for r in decoded}) >= 2, [(r.finish_reason, r.tokens) for r in decoded]


def test_the_adapter_is_applied_and_merging_it_changes_nothing(tiny_checkpoint):
    merged = generator(tiny_checkpoint, temperatures=(0.0,), max_new_tokens=40).generate([TFIM])[0]
    separate = generator(tiny_checkpoint, temperatures=(0.0,), max_new_tokens=40,
                         merge_lora=False).generate([TFIM])[0]
    base = build_generator(GeneratorConfig(generator="transformers", model=str(tiny_checkpoint.base_dir),
                                           temperatures=(0.0,), max_new_tokens=40, device="cpu")).generate([TFIM])[0]
    assert merged.candidates[0].raw == separate.candidates[0].raw == ("```python\n" + SAMPLE_CODE)[:len(
        merged.candidates[0].raw)]
    assert base.candidates[0].raw != merged.candidates[0].raw


def test_rows_beyond_max_batch_rows_are_split_into_several_calls_with_the_same_results(tiny_checkpoint):
    whole = generator(tiny_checkpoint, max_new_tokens=16)
    split = generator(tiny_checkpoint, max_new_tokens=16, max_batch_rows=2)
    calls = count_generate_calls(split)
    assert [c.raw for b in split.generate([TFIM, HEIS]) for c in b.candidates] == \
        [c.raw for b in whole.generate([TFIM, HEIS]) for c in b.candidates]
    assert [shape[0] for shape in calls] == [2, 2, 2]


def test_a_missing_or_wrong_adapter_directory_is_refused_with_what_was_expected(tiny_checkpoint, tmp_path):
    with pytest.raises(GenerationError, match="does not exist"):
        generator(tiny_checkpoint, adapter=str(tmp_path / "nowhere"))
    with pytest.raises(GenerationError, match="no adapter_config.json"):
        generator(tiny_checkpoint, adapter=str(tiny_checkpoint.base_dir))


def test_a_bad_model_is_refused_with_the_valid_names(tmp_path):
    with pytest.raises(GenerationError, match="qwen2.5-coder-7b-instruct"):
        build_generator(GeneratorConfig(generator="transformers", model="gpt-17"))
    (tmp_path / "weights.bin").write_text("")
    with pytest.raises(GenerationError, match="no config.json"):
        build_generator(GeneratorConfig(generator="transformers", model=str(tmp_path)))


def test_cuda_asked_for_on_a_host_without_it_is_refused(tiny_checkpoint):
    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    with pytest.raises(GenerationError, match="CUDA is not available"):
        generator(tiny_checkpoint, device="cuda").generate([TFIM])


class WarmedUpDecoder(GraphDecoder):
    """Runs the real warm-up-and-rewind of CUDA-graph capture after each prefill (on CPU, without the capture)."""

    def _prefill(self, input_ids, attention_mask):
        super()._prefill(input_ids, attention_mask)
        self._run_and_rewind(self._decode_step, times=3)


def test_warm_up_steps_before_graph_capture_leave_no_trace(tiny_checkpoint):
    gen = generator(tiny_checkpoint)
    gen.load()
    texts = [chat_text(gen.tokenizer, render_prompt(r.goal, r.memory_context)) for r in (TFIM, HEIS)]
    spec = SamplingSpec(temperatures=[0.0, 1.0], seeds=[3, 4], max_new_tokens=40, stop=())
    eos = eos_token_ids(gen.model, gen.tokenizer)
    plain, _ = GraphDecoder(gen.model, gen.tokenizer, cuda_graph=False).decode(texts, spec, eos_ids=eos)
    warmed = WarmedUpDecoder(gen.model, gen.tokenizer, cuda_graph=False)
    assert warmed.decode(texts, spec, eos_ids=eos)[0] == plain
    assert warmed.decode(texts, spec, eos_ids=eos)[0] == plain  # and again, on the reset cache
