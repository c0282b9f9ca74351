"""SFT settings: the seed document's QLoRA configuration (../shared/seed/MODEL-CONFIG.md), field for field.

Every default is the seed's number; ``tests/training/test_sft_config.py`` compares them with the document. The
command line overrides fields one by one (``qmind train sft --learning-rate ...``); nothing else changes them.

Backends (``backend``): ``unsloth`` (the seed's FastLanguageModel, 4-bit, when importable on CUDA),
``peft-4bit`` (transformers + bitsandbytes NF4 + peft on CUDA), ``peft`` (plain-precision LoRA: bf16 on CUDA,
float32 on CPU) and ``auto`` (the first of these that the machine can run). On CPU the precision and optimizer
fields cannot be the seed's (no bf16 matmuls worth having, no 8-bit optimizer): ``cpu_adjustments`` says what
changes there, and the checkpoint's config.yaml records the values actually used.
"""

from __future__ import annotations

import dataclasses
from typing import Any

SEED_BASE_MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct"
SEED_TARGET_MODULES: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
BACKENDS = ("auto", "unsloth", "peft-4bit", "peft")


def _f(default: Any, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class LoraSettings:
    """The adapter (seed: FastLanguageModel.get_peft_model)."""

    r: int = _f(32, "LoRA rank.")
    lora_alpha: int = _f(64, "LoRA scaling numerator (the update is scaled by alpha / r).")
    lora_dropout: float = _f(0.05, "Dropout on the LoRA input.")
    target_modules: tuple[str, ...] = _f(SEED_TARGET_MODULES, "Projections the adapter attaches to.")
    bias: str = _f("none", "Which biases train: none.")
    use_gradient_checkpointing: bool = _f(
        True, "Recompute activations in the backward pass (unsloth's own variant under unsloth)."
    )
    random_state: int = _f(42, "Seed of the adapter's initialisation.")


@dataclasses.dataclass(frozen=True)
class SFTSettings:
    """Model, data loading and TrainingArguments of the seed's SFT run."""

    base_model: str = _f(
        SEED_BASE_MODEL, "Base model: a model-table name, Hugging Face id or local directory."
    )
    max_seq_length: int = _f(2048, "Longest training sequence in tokens (TRL 1.x: SFTConfig.max_length).")
    load_in_4bit: bool = _f(True, "Quantise the frozen base to 4-bit NF4 (QLoRA) on CUDA.")
    backend: str = _f(
        "auto", "unsloth, peft-4bit, peft or auto (unsloth > peft-4bit > peft, by what is present)."
    )
    lora: LoraSettings = _f(LoraSettings(), "The LoRA adapter settings.")
    per_device_train_batch_size: int = _f(2, "Sequences per device per micro-batch.")
    gradient_accumulation_steps: int = _f(
        8, "Micro-batches per optimizer step (effective batch 16 on one GPU)."
    )
    learning_rate: float = _f(2e-4, "Peak learning rate.")
    lr_scheduler_type: str = _f("cosine", "Learning-rate schedule after warm-up.")
    warmup_ratio: float = _f(0.1, "Fraction of the steps spent warming up.")
    num_train_epochs: float = _f(3, "Passes over the training split.")
    max_steps: int = _f(-1, "Stop after this many optimizer steps; -1 uses the epochs.")
    bf16: bool = _f(True, "bfloat16 mixed precision.")
    fp16: bool = _f(False, "float16 mixed precision.")
    optim: str = _f("adamw_8bit", "Optimizer (bitsandbytes' 8-bit AdamW).")
    weight_decay: float = _f(0.01, "Decoupled weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    logging_steps: int = _f(10, "Log the loss every this many steps.")
    save_steps: int = _f(500, "Save a trainer checkpoint every this many steps.")
    save_total_limit: int = _f(3, "Trainer checkpoints kept.")
    eval_strategy: str = _f("steps", "When to evaluate: steps (every eval_steps) or no.")
    eval_steps: int = _f(500, "Evaluate every this many steps.")
    seed: int = _f(42, "Seed of the trainer (data order, dropout).")
    dataloader_num_workers: int = _f(4, "Data-loading worker processes.")
    packing: bool = _f(True, "Pack short sequences into max_seq_length blocks (TRL's best-fit decreasing).")
    assistant_only_loss: bool = _f(
        False,
        "Loss on the assistant turn only (the seed does not say; TRL's default is the whole conversation).",
    )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lora"]["target_modules"] = list(self.lora.target_modules)
        return out

    def with_overrides(self, *, lora: dict[str, Any] | None = None, **changes: Any) -> SFTSettings:
        """A copy with some fields changed (``lora`` changes fields of the LoRA settings)."""
        if lora:
            changes["lora"] = dataclasses.replace(self.lora, **lora)
        return dataclasses.replace(self, **changes)


def cpu_adjustments(settings: SFTSettings) -> dict[str, Any]:
    """The fields a CPU run cannot keep, and what it uses instead (float32 weights, torch's AdamW, no
    4-bit)."""
    changes: dict[str, Any] = {}
    if settings.bf16 or settings.fp16:
        changes.update(bf16=False, fp16=False)
    if "8bit" in settings.optim:
        changes["optim"] = "adamw_torch"
    if settings.load_in_4bit:
        changes["load_in_4bit"] = False
    return changes


def help_table(cls=SFTSettings) -> list[tuple[str, Any, str]]:
    """(field, default, help) rows, LoRA fields prefixed ``lora.`` (for the docs and ``--help``)."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            rows += [(f"{f.name}.{name}", value, text) for name, value, text in help_table(type(default))]
        else:
            rows.append((f.name, default, f.metadata.get("help", "")))
    return rows
