"""The CUDA paths of training (skipped on machines without a GPU; never faked): QLoRA SFT keeps every seed
value,
GRPO generates with vLLM when it is installed."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

from tests.training.storeflow import qmind
from training.backend import cuda_available, has_module

require_cuda_bnb = pytest.mark.skipif(
    not (cuda_available() and has_module("bitsandbytes")), reason="needs CUDA and bitsandbytes"
)
require_vllm = pytest.mark.skipif(not (cuda_available() and has_module("vllm")), reason="needs CUDA and vllm")


@pytest.mark.gpu
@require_cuda_bnb
def test_qlora_sft_on_cuda_keeps_every_seed_value(flow_sqlite, sft_export, tiny_base, tmp_path):
    engine, _ = flow_sqlite
    result = qmind(
        engine,
        "train",
        "sft",
        "--data",
        str(sft_export),
        "--model",
        str(tiny_base.base_dir),
        "--backend",
        "peft-4bit",
        "--max-steps",
        "1",
        "--grad-accum",
        "1",
        "--checkpoints",
        str(tmp_path / "c"),
        "--trainer-dir",
        str(tmp_path / "t"),
        "--no-register",
        "--json",
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(
        (pathlib.Path(json.loads(result.stdout)["checkpoint"]) / "config.yaml").read_text()
    )
    used = config["training_config"]
    assert (used["backend"], used["device"], used["bf16"], used["optim"], used["load_in_4bit"]) == (
        "peft-4bit",
        "cuda",
        True,
        "adamw_8bit",
        True,
    )
    assert used["changed_for_backend"] == {}


@pytest.mark.gpu
@require_vllm
def test_grpo_generates_with_vllm_when_it_is_installed(flow_sqlite, grpo_export, hva_checkpoint, tmp_path):
    engine, _ = flow_sqlite
    result = qmind(
        engine,
        "train",
        "grpo",
        "--data",
        str(grpo_export),
        "--adapter",
        str(hva_checkpoint.adapter_dir),
        "--model",
        str(hva_checkpoint.base_dir),
        "--max-steps",
        "1",
        "--max-completion-length",
        "400",
        "--no-4bit",
        "--reward-workers",
        "2",
        "--checkpoints",
        str(tmp_path / "c"),
        "--trainer-dir",
        str(tmp_path / "t"),
        "--no-register",
        "--json",
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(
        (pathlib.Path(json.loads(result.stdout)["checkpoint"]) / "config.yaml").read_text()
    )
    assert config["training_config"]["use_vllm"] is True and config["steps"] == 1
