"""`qmind train sft|grpo|base` options are generated from the settings dataclasses: every field is an option whose
help shows the dataclass default, every flag the commands ever had still sets its field, and every setting that
names a TRL argument names a real one."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer

from scheduler.cli import app
from scheduler.cli.options import flag_name, given_settings
from training.base_config import BaseSettings
from training.eval_run import EvalModelSettings
from training.fields import rows, with_paths
from training.grpo_config import GRPOSettings
from training.sft_config import LoraSettings, SFTSettings

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {"sft": SFTSettings, "grpo": GRPOSettings, "base": BaseSettings, "eval-model": EvalModelSettings}


def _words(command: str) -> list[str]:
    return [command] if command == "eval-model" else ["train", command]


def _help(command: str) -> str:
    env = {**os.environ, "COLUMNS": "3000", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "scheduler.cli", *_words(command), "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    return proc.stdout


def _parsed(text: str, row):
    if text == "None":
        return None
    if row.kind is bool:
        return {"True": True, "False": False}[text]
    if row.kind in (int, float, str):
        return row.kind(text)
    item = typing.get_args(row.kind)[0]
    return tuple(item(x) for x in text.split(",") if x)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_every_settings_field_with_the_dataclass_default(command):
    lines = [" ".join(line.split()) for line in _help(command).splitlines()]
    for row in rows(COMMANDS[command]):
        name = flag_name(row.path)
        line = next((x for x in lines if re.search(rf"(^|[ ,]){re.escape(name)}([ ,]|$)", x)), None)
        assert line is not None, f"{name} ({row.path}) is missing from `qmind train {command} --help`"
        assert row.help.split()[0] in line, f"{name}: the field's help is not shown"
        shown = re.search(r"\[default: \((.*?)\)\]", line)
        assert shown, f"{name}: no default in the help line {line!r}"
        assert _parsed(shown.group(1), row) == row.default, f"{name}: help says {shown.group(1)}"


def _given(command: str, args: list[str]) -> dict:
    cmd = typer.main.get_command(app)
    for word in _words(command):
        cmd = cmd.commands[word]
    ctx = cmd.make_context(command, args)
    return given_settings(COMMANDS[command], ctx.params)


SFT_FLAGS = ["--model", "m", "--no-4bit", "--backend", "peft", "--lora-r", "8", "--lora-alpha", "16",
             "--lora-dropout", "0.1", "--target-modules", "q_proj, v_proj", "--learning-rate", "1e-4",
             "--lr-scheduler", "linear", "--warmup-ratio", "0.2", "--epochs", "2", "--max-steps", "5",
             "--batch-size", "1", "--grad-accum", "2", "--no-bf16", "--optim", "adamw_torch", "--weight-decay", "0",
             "--max-grad-norm", "0.5", "--max-seq-length", "512", "--no-packing", "--eval-steps", "7",
             "--save-steps", "9", "--save-total-limit", "1", "--logging-steps", "2", "--seed", "3",
             "--dataloader-workers", "0", "--no-gradient-checkpointing", "--full-loss"]


def test_every_sft_flag_the_command_had_still_sets_its_field():
    s = with_paths(SFTSettings(), _given("sft", ["--data", "x.jsonl", *SFT_FLAGS]))
    assert (s.base_model, s.load_in_4bit, s.backend) == ("m", False, "peft")
    assert s.lora == LoraSettings(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=("q_proj", "v_proj"),
                                  use_gradient_checkpointing=False)
    assert (s.learning_rate, s.lr_scheduler_type, s.warmup_ratio, s.num_train_epochs, s.max_steps) == (
        1e-4, "linear", 0.2, 2.0, 5)
    assert (s.per_device_train_batch_size, s.gradient_accumulation_steps, s.bf16, s.optim) == (1, 2, False,
                                                                                              "adamw_torch")
    assert (s.weight_decay, s.max_grad_norm, s.max_seq_length, s.packing, s.eval_steps) == (0.0, 0.5, 512, False, 7)
    assert (s.save_steps, s.save_total_limit, s.logging_steps, s.seed, s.dataloader_num_workers) == (9, 1, 2, 3, 0)
    assert s.assistant_only_loss is False and _given("sft", ["--data", "x", "--assistant-only-loss"]) == {
        "assistant_only_loss": True}
    assert _given("sft", ["--data", "x"]) == {}  # nothing given: the seed's values, untouched


def test_every_grpo_base_and_eval_model_flag_the_commands_had_still_sets_its_field():
    grpo = ["--data", "x", "--model", "m", "--backend", "peft", "--4bit", "--epochs", "2", "--max-steps", "3",
            "--batch-size", "2", "--grad-accum", "2", "--learning-rate", "1e-3", "--num-generations", "2",
            "--max-completion-length", "64", "--temperature", "1.0", "--top-p", "0.5", "--top-k", "5",
            "--repetition-penalty", "1.0", "--beta", "0.1", "--reward", "shaped", "--reward-workers", "0",
            "--reward-seed", "7", "--no-vllm", "--rollout", "graph", "--rollout-compile", "--bf16", "--optim", "o",
            "--logging-steps", "2", "--save-steps", "4", "--seed", "1", "--lora-r", "4", "--lora-alpha", "8",
            "--gradient-checkpointing", "--bp-samples", "20", "--restarts", "1"]
    g = with_paths(GRPOSettings(), _given("grpo", grpo))
    expected = GRPOSettings(
        base_model="m", backend="peft", load_in_4bit=True, num_train_epochs=2.0, max_steps=3,
        per_device_train_batch_size=2, gradient_accumulation_steps=2, learning_rate=1e-3, num_generations=2,
        max_completion_length=64, temperature=1.0, top_p=0.5, top_k=5, repetition_penalty=1.0, beta=0.1,
        reward="shaped", reward_workers=0, reward_seed=7, use_vllm=False, rollout="graph", rollout_compile=True,
        bf16=True, optim="o", logging_steps=2, save_steps=4, seed=1,
        lora=LoraSettings(r=4, lora_alpha=8, use_gradient_checkpointing=True))
    assert g == expected
    base = ["--size", "gpu", "--programs-per-goal", "3", "--max-steps", "4", "--time-budget", "5", "--batch-size",
            "6", "--learning-rate", "0.1", "--seed", "7", "--workers", "1"]
    assert with_paths(BaseSettings(), _given("base", base)) == BaseSettings(
        size="gpu", programs_per_goal=3, max_steps=4, time_budget_s=5.0, batch_size=6, learning_rate=0.1, seed=7,
        workers=1)
    evaluation = ["--model", "m", "--adapter", "a", "--generator", "procedural", "--prompts", "3", "--goals",
                  "tfim-4,h2", "--training-data", "d.jsonl", "--temperatures", "0.5,0.9", "--max-new-tokens", "64",
                  "--device", "cpu", "--seed", "2", "--workers", "1", "--bp-samples", "30", "--with-vqe"]
    assert with_paths(EvalModelSettings(), _given("eval-model", evaluation)) == EvalModelSettings(
        model="m", adapter="a", generator="procedural", prompts=3, goals=("tfim-4", "h2"), training_data="d.jsonl",
        temperatures=(0.5, 0.9), max_new_tokens=64, device="cpu", seed=2, workers=1, bp_samples=30, with_vqe=True)


@pytest.mark.parametrize(("settings", "config"), [(SFTSettings, "SFTConfig"), (GRPOSettings, "GRPOConfig")])
def test_every_setting_that_names_a_trl_argument_names_a_real_one(settings, config):
    import trl

    names = {f.name for f in dataclasses.fields(getattr(trl, config))}
    declared = [row.trl for row in rows(settings) if row.trl]
    assert declared and not [n for n in declared if n not in names]
