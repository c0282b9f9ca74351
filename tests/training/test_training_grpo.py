"""``qmind train grpo`` on CPU with rewards from the sandboxed cascade, on a toy task where there is something to
learn: the tests fail when nothing was learned (equal rewards in every group, weights moved only by decay,
the expected reward not higher afterwards)."""

from __future__ import annotations

import json
import math
import pathlib

import pytest
import torch
import yaml
from safetensors.torch import load_file

from db.models import ModelVersion
from db.session import session_scope
from tests.training.storeflow import coin_answers, known_programs, qmind, verdict
from training.errors import TrainingError
from training.grpo import train_grpo
from workers.evaluation.goals import get_goal
from workers.generation.prompts import chat_text, render_prompt
from workers.model_version import adapter_sha256

STEPS, LEARNING_RATE, TEMPERATURE = 4, 1e-3, 0.7
# teaching the coin model (session fixture) and four steps of sampling 400 tokens: minutes on a shared 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def grpo_run(flow_sqlite, grpo_export, coin_checkpoint, tmp_path_factory):
    """Four steps from the tiny model that writes the exact tfim-4 HVA or the same program returning None, about
    half of the time each; no repetition penalty (the HVA repeats tokens), a learning rate that shows learning in
    four steps."""
    engine, _ = flow_sqlite
    root = tmp_path_factory.mktemp("grpo")
    result = qmind(
        engine, "train", "grpo", "--data", str(grpo_export),
        "--adapter", str(coin_checkpoint.adapter_dir), "--model", str(coin_checkpoint.base_dir),
        "--max-steps", str(STEPS), "--learning-rate", str(LEARNING_RATE), "--max-completion-length", "480",
        "--temperature", str(TEMPERATURE), "--top-p", "1.0", "--repetition-penalty", "1.0",
        "--reward-workers", "2", "--bp-samples", "60", "--restarts", "2",
        "--checkpoints", str(root / "checkpoints"), "--trainer-dir", str(root / "trainer"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    return payload, pathlib.Path(payload["checkpoint"]), engine


def answer_probability(base_dir, adapter_dir, answer: str, temperature: float) -> float:
    """The probability that base + adapter samples exactly ``answer`` (then end of turn) at ``temperature``
    for the tfim-4 prompt."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(adapter_dir)).eval()
    prompt = tokenizer(chat_text(tokenizer, render_prompt(get_goal("tfim-4"), "")), add_special_tokens=False)
    tokens = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt["input_ids"] + tokens])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt["input_ids"]) - 1 : -1] / temperature
    return float(torch.log_softmax(logits, -1).gather(1, torch.tensor(tokens)[:, None]).sum().exp())


def test_grpo_steps_are_rewarded_by_the_cascade_and_groups_disagree(grpo_run, coin_checkpoint):
    payload, ckpt, _ = grpo_run
    config = yaml.safe_load((ckpt / "config.yaml").read_text())
    assert (config["method"], config["steps"], config["reward_kind"]) == ("grpo", STEPS, "seed")
    assert config["parent_adapter"] == str(coin_checkpoint.adapter_dir.resolve())
    history = config["reward_history"]
    # sampled at T=0.7 the model mostly writes one of its two answers (a stray sample may have no code block)
    assert len(history) == STEPS and sum(h["code_extracted"] for h in history) / STEPS >= 0.75, history
    # the HVA (valid, reward ~1) and the broken copy (an error, 0) were both written inside one group: an advantage
    assert any(h["reward_std"] > 0.3 for h in history), history
    assert 0 < config["reward_time_share"] < 1 and config["reward_seconds"] > 0
    assert payload["final_reward_mean"] == pytest.approx(history[-1]["reward"])
    used = config["training_config"]
    assert (used["num_generations"], used["per_device_train_batch_size"], used["gradient_accumulation_steps"]) == (
        4, 1, 4)  # fmt: skip
    assert used["learning_rate"] == LEARNING_RATE and used["num_train_epochs"] == config["epochs"] < STEPS
    assert used["use_vllm"] is False and used["device"] == "cpu"


def test_grpo_moved_the_lora_weights_beyond_what_weight_decay_alone_does(grpo_run, coin_checkpoint):
    _, ckpt, _ = grpo_run
    before = load_file(str(coin_checkpoint.adapter_dir / "adapter_model.safetensors"))
    after = load_file(str(ckpt / "adapter_model.safetensors"))
    assert before.keys() == after.keys()
    norm = math.sqrt(sum(float(w.pow(2).sum()) for w in before.values()))
    moved = math.sqrt(sum(float((after[k] - before[k]).pow(2).sum()) for k in before))
    decay_only = norm * LEARNING_RATE * 0.01 * STEPS  # AdamW's decoupled decay at the peak rate, every step
    assert moved > 20 * decay_only, (moved, decay_only)


def test_grpo_raised_the_mean_reward_on_the_toy_task(grpo_run, coin_checkpoint):
    """Expected seed reward = P(HVA) x reward(HVA) + P(broken) x 0 + the rest (at most its probability)."""
    _, ckpt, _ = grpo_run
    reward = verdict(known_programs(get_goal("tfim-4"))["hva"], "tfim-4")["reward"]["seed_reward"]
    good, bad = coin_answers(get_goal("tfim-4"))
    p = {
        name: [answer_probability(coin_checkpoint.base_dir, adapter, text, TEMPERATURE)
               for adapter in (coin_checkpoint.adapter_dir, ckpt)]
        for name, text in (("hva", good), ("broken", bad))
    }  # fmt: skip
    assert 0.1 < p["hva"][0] < 0.9 and 0.1 < p["broken"][0] < 0.9  # a coin before training
    best_before = p["hva"][0] * reward + (1 - p["hva"][0] - p["broken"][0])
    worst_after = p["hva"][1] * reward
    assert worst_after > best_before + 0.05, p
    assert p["broken"][1] < p["broken"][0]


def test_the_grpo_checkpoint_is_a_new_registered_adapter(grpo_run, coin_checkpoint):
    payload, ckpt, engine = grpo_run
    assert (ckpt / "adapter_model.safetensors").is_file() and not (ckpt / "model.safetensors").exists()
    assert adapter_sha256(str(ckpt)) != adapter_sha256(str(coin_checkpoint.adapter_dir))
    with session_scope(engine) as s:
        row = s.get(ModelVersion, payload["model_version_id"])
        assert row.adapter_sha256 == adapter_sha256(str(ckpt)) and row.training_config["method"] == "grpo"
        assert row.training_config["training_data"]["meta"]["kind"] == "grpo"


def test_grpo_refuses_an_sft_export_and_a_mismatched_base(sft_export, sft_run, tmp_path):
    with pytest.raises(TrainingError, match="is a 'sft' export"):
        train_grpo(sft_export, checkpoints_root=tmp_path, do_register=False)
    from training.grpo import base_for_adapter
    from training.grpo_config import GRPOSettings

    _, sft_ckpt, _ = sft_run
    with pytest.raises(TrainingError, match="is not the base of adapter"):
        base_for_adapter(
            GRPOSettings(base_model="qwen2.5-coder-7b-instruct"), str(sft_ckpt), explicit_base=True
        )
    inherited = base_for_adapter(GRPOSettings(), str(sft_ckpt), explicit_base=False)
    assert inherited.base_model == yaml.safe_load((sft_ckpt / "config.yaml").read_text())["base_model"]
