"""``qmind train base``: a Qwen2 model trained from nothing on the project's corpus (a few steps on CPU here)."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

from tests.training.storeflow import qmind
from training.base_config import EVAL_GOALS, is_held_out, train_goal_names
from training.base_corpus import procedural_examples
from training.errors import TrainingError
from workers.evaluation.goals import get_goal
from workers.generation.prompts import chat_text, render_prompt


@pytest.fixture(scope="module")
def base_run(flow_sqlite, tmp_path_factory):
    """Two programs per training goal plus the flow store's verified candidates, 12 steps."""
    engine, _ = flow_sqlite
    out = tmp_path_factory.mktemp("base") / "qmind-mini"
    url = engine.url.render_as_string(hide_password=False)
    result = qmind(engine, "train", "base", "--out", str(out), "--programs-per-goal", "2", "--max-steps", "12",
                   "--batch-size", "2", "--learning-rate", "3e-3", "--workers", "1", "--url", url, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


def test_the_base_is_a_qwen2_checkpoint_with_its_tokenizer_and_chat_template(base_run):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    payload, out = base_run
    assert AutoConfig.from_pretrained(out).model_type == "qwen2"
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) == payload["parameters"] < 2_000_000
    text = chat_text(tokenizer, render_prompt(get_goal("heisenberg-4"), ""))
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    code = "def create_ansatz(num_qubits: int) -> QuantumCircuit:\n    qc.rzz(theta[0], 0, 1)\n"
    assert tokenizer.decode(tokenizer(code)["input_ids"]) == code
    assert tokenizer.eos_token == "<|im_end|>" and model.generation_config.eos_token_id


def test_the_corpus_holds_every_training_goal_and_no_held_out_one(base_run):
    _, out = base_run
    record = yaml.safe_load((out / "training.yaml").read_text())
    per_goal = record["corpus"]["per_goal"]
    assert set(train_goal_names()) <= set(per_goal)
    assert not [g for g in per_goal if is_held_out(get_goal(g))]
    assert any("store" in v for v in per_goal.values())  # the flow store's verified candidates of training goals
    assert "heisenberg-4" not in per_goal  # the flow store judged heisenberg-4 candidates: held out anyway
    assert record["held_out"]["eval_goals"] == list(EVAL_GOALS) and all(is_held_out(get_goal(g)) for g in EVAL_GOALS)


def test_training_lowered_the_loss(base_run):
    payload, out = base_run
    record = yaml.safe_load((out / "training.yaml").read_text())
    assert record["steps"] == 12 and payload["final_loss"] < payload["first_loss"] - 0.5, record["history"]


def test_the_transformers_generator_takes_the_base_as_its_model(base_run):
    from workers.generation import build_generator
    from workers.generation.base import PromptRequest
    from workers.generation.config import GeneratorConfig

    _, out = base_run
    generator = build_generator(GeneratorConfig(generator="transformers", model=str(out), max_new_tokens=16,
                                                device="cpu", dtype="float32"))
    [batch] = generator.generate([PromptRequest(goal=get_goal("heisenberg-4"), seed=1)])
    assert len(batch.candidates) == 3 and all(c.tokens > 0 for c in batch.candidates)


def test_held_out_goals_cannot_be_training_goals_and_a_used_folder_is_refused(base_run, tmp_path):
    with pytest.raises(TrainingError, match="held out"):
        procedural_examples(["tfim-4", "heisenberg-open-5"], 1, seed=0)
    with pytest.raises(TrainingError, match="held out"):
        procedural_examples(["xy-8"], 1, seed=0)
    _, out = base_run
    from training.base_model import train_base

    with pytest.raises(TrainingError, match="not empty"):
        train_base(pathlib.Path(out))


def test_the_fast_loss_equals_the_models_own_masked_loss_on_a_right_padded_batch():
    """The cpu loop drops the attention mask and runs the vocabulary head on completion positions only; on right-padded
    rows of different lengths that must be the same loss as transformers' own (mask + labels) computation."""
    import torch

    from tests.tinymodel import build_model, build_tokenizer
    from training.base_model import _batch, _loss

    tokenizer = build_tokenizer()
    model = build_model(tokenizer).eval()
    g = torch.Generator().manual_seed(0)
    rows = [(torch.randint(3, model.config.vocab_size, (n,), generator=g).tolist(), p) for n, p in ((23, 7), (9, 4), (16, 15))]
    ids, labels = _batch(rows, tokenizer.pad_token_id or 0, "cpu")
    mask = torch.zeros_like(ids)
    for i, (seq, _) in enumerate(rows):
        mask[i, : len(seq)] = 1
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        fast = _loss(model, ids, labels)
    assert torch.allclose(fast, reference, atol=1e-5), (float(fast), float(reference))
