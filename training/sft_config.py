"""SFT settings: the seed document's QLoRA configuration (../shared/seed/MODEL-CONFIG.md), field for field.

Every default is the seed's number; ``tests/training/test_sft_config.py`` compares them with the document. The
command line overrides fields one by one (``qmind train sft --learning-rate ...``); nothing else changes them.

Backends (``backend``): ``unsloth`` (the seed's FastLanguageModel, 4-bit, when importable on CUDA),
``peft-4bit`` (transformers + bitsandbytes NF4 + peft on CUDA), ``peft`` (plain-precision LoRA: bf16 on CUDA,
float32 on CPU) and ``auto`` (the first of these that the machine can run). On CPU the precision and optimizer
fields cannot be the seed's (no bf16 matmuls worth having, no 8-bit optimizer): ``trl_args.cpu_adjustments`` says
what changes there, and the checkpoint's config.yaml records the values actually used.

Each field is declared once (``fields.setting``): its ``qmind train sft`` option and its SFTConfig argument are
derived from it.
"""

from __future__ import annotations

import dataclasses

from .fields import Settings, setting

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


@dataclasses.dataclass(frozen=True)
class LoraSettings:
    """The adapter (seed: FastLanguageModel.get_peft_model). Not trainer arguments: peft's LoraConfig."""

    r: int = setting(32, "LoRA rank.", trl=None)
    lora_alpha: int = setting(64, "LoRA scaling numerator (the update is scaled by alpha / r).", trl=None)
    lora_dropout: float = setting(0.05, "Dropout on the LoRA input.", trl=None)
    target_modules: tuple[str, ...] = setting(SEED_TARGET_MODULES, "Projections the adapter attaches to.",
                                              aliases=("--target-modules",), trl=None)
    bias: str = setting("none", "Which biases train: none.", trl=None)
    use_gradient_checkpointing: bool = setting(
        True, "Recompute activations in the backward pass (unsloth's own variant under unsloth).",
        aliases=("--gradient-checkpointing/--no-gradient-checkpointing",), trl=None,  # trl_args: version's name
    )
    random_state: int = setting(42, "Seed of the adapter's initialisation.", trl=None)


@dataclasses.dataclass(frozen=True)
class SFTSettings(Settings):
    """Model, data loading and TrainingArguments of the seed's SFT run."""

    base_model: str = setting(SEED_BASE_MODEL, "Base model: a model-table name, Hugging Face id or local directory.",
                              aliases=("--model",), trl=None)
    max_seq_length: int = setting(2048, "Longest training sequence in tokens (TRL 1.x: SFTConfig.max_length).",
                                  trl="max_length")
    load_in_4bit: bool = setting(True, "Quantise the frozen base to 4-bit NF4 (QLoRA) on CUDA.",
                                 aliases=("--4bit/--no-4bit",), trl=None)
    backend: str = setting(
        "auto", "unsloth, peft-4bit, peft or auto (unsloth > peft-4bit > peft, by what is present).", trl=None
    )
    lora: LoraSettings = setting(LoraSettings(), "The LoRA adapter settings.", trl=None)
    per_device_train_batch_size: int = setting(2, "Sequences per device per micro-batch.", aliases=("--batch-size",))
    gradient_accumulation_steps: int = setting(
        8, "Micro-batches per optimizer step (effective batch 16 on one GPU).", aliases=("--grad-accum",)
    )
    learning_rate: float = setting(2e-4, "Peak learning rate.")
    lr_scheduler_type: str = setting("cosine", "Learning-rate schedule after warm-up.", aliases=("--lr-scheduler",))
    warmup_ratio: float = setting(0.1, "Fraction of the steps spent warming up.", trl=None)  # trl_args: by version
    num_train_epochs: float = setting(3, "Passes over the training split.", aliases=("--epochs",))
    max_steps: int = setting(-1, "Stop after this many optimizer steps; -1 uses the epochs.")
    bf16: bool = setting(True, "bfloat16 mixed precision (off on CPU).")
    fp16: bool = setting(False, "float16 mixed precision.")
    optim: str = setting("adamw_8bit", "Optimizer (bitsandbytes' 8-bit AdamW; adamw_torch on CPU).")
    weight_decay: float = setting(0.01, "Decoupled weight decay.")
    max_grad_norm: float = setting(1.0, "Gradient clipping norm.")
    logging_steps: int = setting(10, "Log the loss every this many steps.")
    save_steps: int = setting(500, "Save a trainer checkpoint every this many steps.")
    save_total_limit: int = setting(3, "Trainer checkpoints kept.")
    eval_strategy: str = setting("steps", "When to evaluate: steps (every eval_steps) or no.", trl=None)
    eval_steps: int = setting(500, "Evaluate every this many steps.")
    seed: int = setting(42, "Seed of the trainer (data order, dropout).")
    dataloader_num_workers: int = setting(4, "Data-loading worker processes.", aliases=("--dataloader-workers",))
    packing: bool = setting(True, "Pack short sequences into max_seq_length blocks (TRL's best-fit decreasing).")
    assistant_only_loss: bool = setting(
        True,
        "Loss on the assistant turn only, as `qmind train base` trains (the seed does not say; --full-loss also "
        "trains on the system and user prompts).",
        aliases=(" /--full-loss",), trl="completion_only_loss",
    )
