"""Settings -> TRL's config arguments, one mapping for SFT and GRPO.

Every setting declared with a ``trl`` name (``fields.setting``) becomes that argument unchanged; what a CPU run
cannot keep is changed first (``cpu_adjustments``); then the arguments every run of this project fixes (no
reporting, gradient checkpointing under this transformers' name). ``trl_sft_kwargs`` and ``trl_grpo_kwargs`` add
only what belongs to their trainer.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from .errors import TrainingError
from .fields import rows


@functools.cache
def _training_argument_names() -> frozenset[str]:
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments))


def checkpointing_kwargs(enabled: bool) -> dict[str, Any]:
    """Gradient checkpointing under the name this transformers uses (5.2x renamed it
    activation_checkpointing)."""
    prefix = "activation" if "activation_checkpointing" in _training_argument_names() else "gradient"
    return {f"{prefix}_checkpointing": enabled, f"{prefix}_checkpointing_kwargs": {"use_reentrant": False}}


def warmup_kwargs(ratio: float) -> dict[str, float]:
    """transformers 5 folded ``warmup_ratio`` into ``warmup_steps`` (a float below 1 is a ratio); 4.x has
    both."""
    if "warmup_ratio" in _training_argument_names():
        return {"warmup_ratio": ratio}
    if not 0 <= ratio < 1:
        raise TrainingError(f"warmup ratio must be in [0, 1), got {ratio}")
    return {"warmup_steps": ratio}


def cpu_adjustments(settings: Any) -> dict[str, Any]:
    """The fields a CPU run cannot keep, and what it uses instead (float32 weights, torch's AdamW, no
    4-bit)."""
    names = {f.name for f in dataclasses.fields(settings)}
    changes: dict[str, Any] = {}
    if getattr(settings, "bf16", False) or getattr(settings, "fp16", False):
        changes.update({k: False for k in ("bf16", "fp16") if k in names})
    if "8bit" in getattr(settings, "optim", ""):
        changes["optim"] = "adamw_torch"
    if getattr(settings, "load_in_4bit", False):
        changes["load_in_4bit"] = False
    return changes


def trainer_arguments(settings: Any, *, output_dir: str, on_cpu: bool) -> dict[str, Any]:
    """The arguments of a TRL config (SFTConfig, GRPOConfig) that ``settings`` and this project decide."""
    s = dataclasses.replace(settings, **cpu_adjustments(settings)) if on_cpu else settings
    values = {row.trl: _get(s, row.path) for row in rows(type(s)) if row.trl}
    return {
        "output_dir": output_dir,
        **values,
        **checkpointing_kwargs(s.lora.use_gradient_checkpointing),
        "report_to": "none",
        "use_cpu": on_cpu,
    }


def _get(settings: Any, path: str) -> Any:
    for part in path.split("."):
        settings = getattr(settings, part)
    return settings


def trl_sft_kwargs(settings: Any, *, output_dir: str, has_eval: bool, on_cpu: bool) -> dict[str, Any]:
    """SFTConfig keyword arguments (TRL 1.x names: ``max_length`` replaced ``max_seq_length``)."""
    return {
        **trainer_arguments(settings, output_dir=output_dir, on_cpu=on_cpu),
        "per_device_eval_batch_size": settings.per_device_train_batch_size,
        **warmup_kwargs(settings.warmup_ratio),
        "eval_strategy": settings.eval_strategy if has_eval else "no",
        "data_seed": settings.seed,
        "include_num_input_tokens_seen": True,
        "save_strategy": "steps",
        "logging_first_step": True,
    }


def trl_grpo_kwargs(settings: Any, *, output_dir: str, on_cpu: bool, use_vllm: bool) -> dict[str, Any]:
    """GRPOConfig keyword arguments (``use_vllm`` as resolved for this machine: ``grpo.resolve_vllm``)."""
    return {
        **trainer_arguments(settings, output_dir=output_dir, on_cpu=on_cpu),
        "use_vllm": use_vllm,
        "vllm_mode": "colocate",
        "remove_unused_columns": False,
        "log_completions": False,
    }
