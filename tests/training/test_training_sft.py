"""``qmind train sft`` on a tiny random Qwen2 (CPU, a few steps): checkpoint, config.yaml, model-version
registry."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from safetensors.torch import load_file
from sqlalchemy import select

from db.models import ModelVersion
from db.session import session_scope
from db.writes import upsert_model_version
from tests.training.storeflow import qmind
from training.checkpoints import SEED_FIELDS, reserve, write_config
from training.dataset_files import load_rows
from training.errors import TrainingError
from training.sft import train_sft
from training.sft_config import SFTSettings
from workers.model_version import adapter_sha256, model_version_fields


def test_sft_trains_a_few_steps_on_cpu_and_writes_an_adapter_only_checkpoint(sft_run):
    payload, ckpt, _ = sft_run
    assert ckpt.name == "quantum-mind-v1" and payload["version"] == "v1" and payload["steps"] == 4
    files = {p.name for p in ckpt.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "config.yaml"} <= files
    assert not files & {"model.safetensors", "pytorch_model.bin"}  # adapter weights only
    adapter = json.loads((ckpt / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (32, 64, 0.05)
    assert sorted(adapter["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    weights = load_file(str(ckpt / "adapter_model.safetensors"))
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(
        torch.count_nonzero(w) > 0 for w in lora_b
    )  # B starts at zero: the steps trained it


def test_config_yaml_records_the_runs_speed_per_optimizer_step(sft_run):
    _, ckpt, _ = sft_run
    speed = yaml.safe_load((ckpt / "config.yaml").read_text())["throughput"]
    assert speed["steps"] == 4 and len(speed["step_seconds"]) == 4 and all(s > 0 for s in speed["step_seconds"])
    assert all(t > 0 for t in speed["step_tokens"])  # packed input ids of the 2 x 2 micro-batches of a step
    later = sum(speed["step_tokens"][1:]) / sum(speed["step_seconds"][1:])  # the first step is left out
    assert speed["tokens_per_s"] == pytest.approx(later, rel=1e-3)
    assert speed["peak_memory_gib"] is None  # CPU


def test_config_yaml_has_the_seeds_fields_and_names_its_data(sft_run, sft_export):
    _, ckpt, _ = sft_run
    config = yaml.safe_load((ckpt / "config.yaml").read_text())
    assert list(config)[: len(SEED_FIELDS)] == list(SEED_FIELDS)
    train_rows = sum(r["split"] == "train" for r in load_rows(sft_export))
    assert (config["version"], config["num_examples"]) == ("v1", train_rows)
    # --max-steps overrode the seed's 3 epochs: config.yaml says how many were really done (the packed export is
    # one sequence, so each step is an epoch)
    assert config["epochs"] == config["epochs_completed"] == config["training_config"]["num_train_epochs"] == 4
    assert config["training_data"]["file"] == str(sft_export.resolve())
    assert config["training_data"]["meta"]["kind"] == "sft" and config["training_data"]["sha256"]
    assert math.isfinite(config["final_loss"]) and config["final_loss"] > 0
    assert config["final_loss"] < config["first_loss"] - 0.1, "the training loss did not fall"
    assert 0.0 <= config["eval_accuracy"] <= 1.0 and math.isfinite(config["eval_loss"])
    assert config["perplexity"] == pytest.approx(math.exp(config["eval_loss"]))
    assert len(str(config["date"])) == 10
    used = config["training_config"]
    assert (used["learning_rate"], used["lr_scheduler_type"], used["packing"], used["max_seq_length"]) == (
        1e-2,
        "cosine",
        True,
        2048,
    )
    assert (used["max_steps"], used["gradient_accumulation_steps"]) == (4, 2)  # the overrides
    assert used["eval_strategy"] == "steps"  # the export has an eval split (tfim-6)
    assert used["backend"] == "peft" and used["changed_for_backend"] == {
        "load_in_4bit": False,
        "bf16": False,
        "fp16": False,
        "optim": "adamw_torch",
    }


def test_config_yaml_records_no_evaluation_without_an_eval_split_and_the_epochs_run():
    from types import SimpleNamespace

    from training.sft import effective_settings

    loaded = SimpleNamespace(adjustments={}, device="cuda", backend="peft")
    used = effective_settings(SFTSettings(max_steps=7), loaded, has_eval=False, state_epoch=0.4375)
    assert (used["eval_strategy"], used["num_train_epochs"], used["max_steps"]) == ("no", 0.4375, 7)
    used = effective_settings(SFTSettings(), loaded, has_eval=True, state_epoch=3.0)
    assert (used["eval_strategy"], used["num_train_epochs"]) == ("steps", 3)


def test_the_checkpoint_is_registered_with_its_adapter_hash(sft_run, tiny_base):
    payload, ckpt, engine = sft_run
    with session_scope(engine) as s:
        row = s.get(ModelVersion, payload["model_version_id"])
        assert row.name == "quantum-mind-v1" and row.adapter_path == str(ckpt.resolve())
        assert row.adapter_sha256 == adapter_sha256(str(ckpt)) and row.base_model == str(
            tiny_base.base_dir.resolve()
        )
        assert row.training_config["version"] == "v1" and row.metrics["training"]["final_loss"] > 0


def test_generation_batches_with_the_adapter_name_the_registered_model_version(sft_run, tiny_base):
    from workers.evaluation.goals import get_goal
    from workers.generation import build_generator
    from workers.generation.base import PromptRequest
    from workers.generation.config import GeneratorConfig

    payload, ckpt, engine = sft_run
    gen = build_generator(
        GeneratorConfig(
            generator="transformers",
            model=str(tiny_base.base_dir),
            adapter=str(ckpt),
            max_new_tokens=4,
            temperatures=(0.7,),
        )
    )
    batch = gen.generate([PromptRequest(get_goal("tfim-4"))])[0]
    with session_scope(engine) as s:  # what the generation task does with every batch
        assert upsert_model_version(s, **model_version_fields(batch.to_dict())) == payload["model_version_id"]


def test_registering_is_idempotent_on_sqlite_and_postgresql(store, sft_run):
    _, ckpt, _ = sft_run
    result = qmind(store, "train", "register", str(ckpt), "--json")
    again = qmind(store, "train", "register", str(ckpt), "--json")
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.stdout), json.loads(again.stdout)
    assert first["model_version_id"] == second["model_version_id"] and first["version"] == "v1"
    with session_scope(store) as s:
        rows = s.execute(select(ModelVersion)).scalars().all()
        assert len(rows) == 1 and rows[0].adapter_sha256 == adapter_sha256(str(ckpt))
        assert rows[0].training_config["training_data"]["meta"]["kind"] == "sft"


def test_promoting_to_final_copies_the_checkpoint_and_never_overwrites_it(store, sft_run, tmp_path):
    _, ckpt, _ = sft_run
    result = qmind(store, "train", "register", str(ckpt), "--final", "--checkpoints", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    final = tmp_path / "quantum-mind-final"
    config = yaml.safe_load((final / "config.yaml").read_text())
    assert config["version"] == "final" and config["promoted_from"] == str(ckpt.resolve())
    assert (final / "adapter_model.safetensors").read_bytes() == (
        ckpt / "adapter_model.safetensors"
    ).read_bytes()
    again = qmind(store, "train", "register", str(ckpt), "--final", "--checkpoints", str(tmp_path), "--json")
    assert again.exit_code == 2 and "never overwritten" in json.loads(again.stdout)["error"]


def test_checkpoint_names_take_the_next_free_version_and_a_failed_run_leaves_nothing(tmp_path):
    first = reserve(tmp_path)
    assert first.version == "v1"
    (tmp_path / "quantum-mind-v7").mkdir()
    second = reserve(tmp_path)
    assert second.version == "v8"
    with pytest.raises(TrainingError, match="incomplete"):
        first.commit()
    first.partial.mkdir()
    write_config(first.partial, {k: 1 for k in SEED_FIELDS})
    assert first.commit() == tmp_path / "quantum-mind-v1" and (first.path / "config.yaml").is_file()
    second.abandon()
    assert not second.path.exists()
    with pytest.raises(TrainingError, match="missing"):
        write_config(tmp_path, {"version": "v1"})


def test_a_run_that_cannot_load_its_model_leaves_no_checkpoint_behind(sft_export, tmp_path):
    settings = SFTSettings(base_model="no-such-model")
    with pytest.raises(TrainingError, match="unknown model 'no-such-model'"):
        train_sft(sft_export, settings=settings, checkpoints_root=tmp_path, do_register=False)
    assert list(tmp_path.iterdir()) == []


def test_sft_refuses_a_grpo_export(grpo_export, tmp_path):
    with pytest.raises(TrainingError, match="is a 'grpo' export"):
        train_sft(grpo_export, checkpoints_root=tmp_path, do_register=False)


def test_packing_on_cpu_keeps_packed_sequences_apart():
    """Why the CPU path keeps the seed's packing: with position ids restarting per sequence and no cache (as
    TRL's
    trainer runs it), SDPA attention masks each packed sequence off from the others."""
    from tests.tinymodel import build_model, build_tokenizer

    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    a = tokenizer("def create_ansatz(num_qubits):\n    return qc", add_special_tokens=False)["input_ids"]
    b = tokenizer("from qiskit import QuantumCircuit\nqc = QuantumCircuit(4)", add_special_tokens=False)[
        "input_ids"
    ]
    with torch.no_grad():
        alone_b = model(torch.tensor([b]), use_cache=False).logits[0]
        positions = torch.tensor([list(range(len(a))) + list(range(len(b)))])
        packed = model(input_ids=torch.tensor([a + b]), position_ids=positions, use_cache=False).logits[0]
        unmasked = model(input_ids=torch.tensor([a + b]), use_cache=False).logits[0]
    assert torch.allclose(packed[len(a) :], alone_b, atol=1e-5)
    assert not torch.allclose(unmasked[len(a) :], alone_b, atol=1e-3)  # the check can fail


def test_filling_abandons_a_run_that_fails_or_is_interrupted_but_keeps_a_committed_checkpoint(tmp_path):
    from training.checkpoints import filling

    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), filling(reserve(tmp_path)) as reservation:
            reservation.partial.mkdir()
            raise error
        assert list(tmp_path.iterdir()) == [], error  # neither the reserved name nor the partial folder is left
    with pytest.raises(RuntimeError), filling(reserve(tmp_path)) as reservation:
        reservation.partial.mkdir()
        write_config(reservation.partial, {k: 1 for k in SEED_FIELDS})
        reservation.commit()
        raise RuntimeError("after the commit (e.g. while registering)")
    assert (tmp_path / "quantum-mind-v1" / "config.yaml").is_file()
