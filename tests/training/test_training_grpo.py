"""``qmind train grpo``: one GRPO step on CPU with rewards from the sandboxed cascade."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

from db.models import ModelVersion
from db.session import session_scope
from tests.training.storeflow import qmind
from training.errors import TrainingError
from training.grpo import train_grpo
from workers.model_version import adapter_sha256


@pytest.fixture(scope="module")
def grpo_run(flow_sqlite, grpo_export, hva_checkpoint, tmp_path_factory):
    """One step from the tiny model taught the exact tfim-4 HVA, sampling near-greedily and without a
    repetition penalty (the HVA repeats tokens) so it writes that HVA."""
    engine, _ = flow_sqlite
    root = tmp_path_factory.mktemp("grpo")
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
        "--temperature",
        "0.1",
        "--repetition-penalty",
        "1.0",
        "--reward-workers",
        "2",
        "--bp-samples",
        "60",
        "--restarts",
        "2",
        "--checkpoints",
        str(root / "checkpoints"),
        "--trainer-dir",
        str(root / "trainer"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    return payload, pathlib.Path(payload["checkpoint"]), engine


def test_one_grpo_step_runs_on_cpu_and_is_rewarded_by_the_cascade(grpo_run, hva_checkpoint):
    payload, ckpt, _ = grpo_run
    config = yaml.safe_load((ckpt / "config.yaml").read_text())
    assert (config["method"], config["steps"], config["reward_kind"]) == ("grpo", 1, "seed")
    assert config["parent_adapter"] == str(hva_checkpoint.adapter_dir.resolve())
    [step] = config["reward_history"]
    # four completions of the tfim-4 prompt, each the taught HVA: extracted, sandboxed, verified, VQE ~ exact
    assert step["rewards/seed_reward/mean"] > 0.9 and step["valid"] == 1.0 and step["code_extracted"] == 1.0
    assert payload["final_reward_mean"] == pytest.approx(step["reward"])
    used = config["training_config"]
    assert (
        used["num_generations"],
        used["learning_rate"],
        used["per_device_train_batch_size"],
        used["gradient_accumulation_steps"],
    ) == (4, 5e-6, 1, 4)
    # --max-steps 1 overrode the seed's 1 epoch: config.yaml records the fraction of an epoch really done
    assert 0 < used["num_train_epochs"] == config["epochs"] < 1
    assert 0 < config["reward_time_share"] < 1 and config["reward_seconds"] > 0
    assert used["use_vllm"] is False and used["device"] == "cpu"


def test_the_grpo_checkpoint_is_a_new_registered_adapter(grpo_run, hva_checkpoint):
    payload, ckpt, engine = grpo_run
    assert (ckpt / "adapter_model.safetensors").is_file() and not (ckpt / "model.safetensors").exists()
    assert adapter_sha256(str(ckpt)) != adapter_sha256(str(hva_checkpoint.adapter_dir))
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
