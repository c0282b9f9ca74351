"""The SFT and GRPO settings: the seed document's numbers, field for field, and how they reach TRL."""

from __future__ import annotations

import dataclasses
import re

import pytest
from seeddoc import SEED

from training.backend import choose_backend
from training.errors import TrainingError
from training.fields import help_table
from training.grpo_config import GRPOSettings
from training.sft_config import SEED_TARGET_MODULES, LoraSettings, SFTSettings
from training.trl_args import cpu_adjustments, trl_grpo_kwargs, trl_sft_kwargs

# The seed's numbers, copied from MODEL-CONFIG.md ("Unsloth Configuration" and "Training Hyperparameters").
SEED_SFT = {
    "base_model": "Qwen/Qwen2.5-Coder-7B-Instruct",
    "max_seq_length": 2048,
    "load_in_4bit": True,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 8,
    "learning_rate": 2e-4,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1,
    "num_train_epochs": 3,
    "max_steps": -1,
    "bf16": True,
    "fp16": False,
    "optim": "adamw_8bit",
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "logging_steps": 10,
    "save_steps": 500,
    "save_total_limit": 3,
    "eval_strategy": "steps",
    "eval_steps": 500,
    "seed": 42,
    "dataloader_num_workers": 4,
    "packing": True,
}
SEED_LORA = {
    "r": 32,
    "lora_alpha": 64,
    "lora_dropout": 0.05,
    "bias": "none",
    "random_state": 42,
    "target_modules": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}


def test_sft_defaults_are_the_seed_numbers():
    settings = SFTSettings()
    assert {k: getattr(settings, k) for k in SEED_SFT} == SEED_SFT
    assert {k: getattr(settings.lora, k) for k in SEED_LORA} == SEED_LORA
    assert settings.lora.use_gradient_checkpointing is True  # seed: use_gradient_checkpointing="unsloth"


def _seed_value(text: str, name: str) -> str:
    match = re.search(rf"\b{name}\s*=\s*([^,\n#]+)", text)
    assert match, f"{name} not found in the seed document"
    return match.group(1).strip().strip('"')


def test_sft_defaults_match_the_numbers_written_in_the_seed_document():
    text = SEED.read_text()
    settings = SFTSettings()
    for name in (
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_ratio",
        "num_train_epochs",
        "max_steps",
        "optim",
        "weight_decay",
        "max_grad_norm",
        "logging_steps",
        "save_steps",
        "save_total_limit",
        "eval_strategy",
        "eval_steps",
        "seed",
        "dataloader_num_workers",
        "max_seq_length",
        "bf16",
        "fp16",
        "packing",
    ):
        written = _seed_value(text, name)
        value = getattr(settings, name)
        if isinstance(value, bool):
            assert str(value) == written, name
        elif isinstance(value, (int, float)):
            assert value == pytest.approx(float(written)), name
        else:
            assert value == written, name
    for name in ("r", "lora_alpha", "lora_dropout", "random_state"):
        assert getattr(settings.lora, name) == pytest.approx(float(_seed_value(text, name))), name
    modules = re.search(r"target_modules=\[(.*?)\]", text, re.DOTALL).group(1)
    assert tuple(re.findall(r'"(\w+)"', modules)) == settings.lora.target_modules
    assert f'model_name="{settings.base_model}"' in text


def test_every_setting_has_a_one_line_help():
    for cls in (SFTSettings, LoraSettings, GRPOSettings):
        for name, _default, text in help_table(cls):
            assert text and "\n" not in text, f"{cls.__name__}.{name} has no one-line help"


def test_the_seed_values_reach_trl_sft_config_under_trl_1_names():
    from trl import SFTConfig

    kwargs = trl_sft_kwargs(SFTSettings(), output_dir="out", has_eval=True, on_cpu=True)
    config = SFTConfig(**kwargs)
    assert config.max_length == 2048 and config.packing is True  # TRL 1.x: max_length replaced max_seq_length
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (2, 8)
    assert (config.learning_rate, config.num_train_epochs, config.weight_decay, config.max_grad_norm) == (
        2e-4,
        3,
        0.01,
        1.0,
    )
    assert config.lr_scheduler_type == "cosine" and config.get_warmup_steps(1000) == 100
    assert (config.eval_strategy, config.eval_steps, config.save_steps, config.save_total_limit) == (
        "steps",
        500,
        500,
        3,
    )
    assert (config.seed, config.logging_steps, config.dataloader_num_workers) == (42, 10, 4)
    # what a CPU run cannot keep, and nothing else
    assert (config.bf16, str(config.optim.value)) == (False, "adamw_torch")
    assert cpu_adjustments(SFTSettings()) == {
        "bf16": False,
        "fp16": False,
        "optim": "adamw_torch",
        "load_in_4bit": False,
    }
    gpu = trl_sft_kwargs(SFTSettings(), output_dir="out", has_eval=True, on_cpu=False)
    assert (gpu["bf16"], gpu["optim"]) == (True, "adamw_8bit")


def test_without_an_eval_split_the_trainer_does_not_evaluate():
    assert trl_sft_kwargs(SFTSettings(), output_dir="o", has_eval=False, on_cpu=True)["eval_strategy"] == "no"


def test_overrides_change_one_field_and_leave_the_seed_values():
    changed = SFTSettings().with_overrides(learning_rate=1e-4, lora={"r": 8})
    assert (changed.learning_rate, changed.lora.r) == (1e-4, 8)
    untouched = {f.name for f in dataclasses.fields(SFTSettings)} - {"learning_rate", "lora"}
    assert all(getattr(changed, n) == getattr(SFTSettings(), n) for n in untouched)
    assert changed.lora.lora_alpha == 64 and changed.lora.target_modules == SEED_TARGET_MODULES


def test_grpo_settings_keep_the_seed_values_and_a_valid_group_size():
    from trl import GRPOConfig

    s = GRPOSettings()
    assert (
        s.num_train_epochs,
        s.per_device_train_batch_size,
        s.gradient_accumulation_steps,
        s.learning_rate,
    ) == (1, 1, 4, 5e-6)
    assert s.reward == "seed"
    config = GRPOConfig(**trl_grpo_kwargs(s, output_dir="out", on_cpu=True, use_vllm=False))
    assert config.generation_batch_size % config.num_generations == 0  # TRL refuses otherwise
    assert (
        config.num_generations,
        config.max_completion_length,
        config.temperature,
        config.top_p,
        config.top_k,
        config.repetition_penalty,
    ) == (4, 1024, 0.7, 0.9, 50, 1.1)  # the seed's sampling


def test_this_cpu_machine_trains_on_plain_peft_and_refuses_gpu_backends_with_a_reason():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine chooses a GPU backend")
    assert choose_backend("auto") == "peft"
    for backend in ("unsloth", "peft-4bit"):
        with pytest.raises(TrainingError, match="needs a CUDA GPU"):
            choose_backend(backend)
    with pytest.raises(TrainingError, match="unknown backend"):
        choose_backend("deepspeed")
