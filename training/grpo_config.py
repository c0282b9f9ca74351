"""GRPO settings: the seed's values where it gives them, the rest chosen here and documented.

Seed (MODEL-CONFIG.md, "GRPO Fine-Tuning"): 1 epoch, per-device batch 1, gradient accumulation 4, learning
rate 5e-6, no reward model (verifiable rewards), reward ``max(0, 1 - 10 * error)``; here the error is normalised
per goal (``max(0, 1 - eps)``, eps = error / (E_ref - E0), docs/scoring.md) and the literal form only recorded.

Chosen here:

- ``num_generations = 4``: TRL needs the generation batch (per-device batch x accumulation = 4) to be a
  multiple of the group size; 4 completions of one prompt per optimizer step is the largest group the seed's
  batch allows, and a group of 4 gives a usable group-relative advantage (at 2 the advantage is only a sign).
- sampling: the seed's inference settings (temperature 0.7, top_p 0.9, top_k 50, repetition penalty 1.1, 1024
  new tokens), so GRPO explores the distribution the discovery loop samples from.
- ``beta = 0.0``, ``loss_type = "dapo"``, ``scale_rewards = "group"``: TRL 1.x's defaults (no KL reference
  model, which halves memory; token-level normalisation without length bias).
- adapter, precision and optimizer as in SFT (QLoRA, bf16, 8-bit AdamW; float32 and torch AdamW on CPU).
- ``disable_dropout = True``: the LoRA's dropout (0.05) would otherwise be active while TRL samples
  completions and in both forward passes whose ratio GRPO clips, so rollouts come from a randomly perturbed
  policy and the ratio carries dropout noise; switching it off during GRPO is the usual choice (TRL's own
  option).
- ``logging_steps = 1``: a GRPO step is expensive (generation + sandboxed scoring); every one is worth a line.
"""

from __future__ import annotations

import dataclasses

from .fields import Settings, setting
from .sft_config import SEED_BASE_MODEL, LoraSettings


@dataclasses.dataclass(frozen=True)
class GRPOSettings(Settings):
    """Model, rollout, reward and optimisation settings of a GRPO run."""

    base_model: str = setting(
        SEED_BASE_MODEL, "Base model (default: the adapter's base when --adapter is given, else this one).",
        aliases=("--model",), trl=None)
    backend: str = setting("auto", "unsloth is not used for GRPO: peft-4bit on CUDA with bitsandbytes, else peft.",
                           trl=None)
    load_in_4bit: bool = setting(True, "Quantise the frozen base to 4-bit NF4 on CUDA.",
                                 aliases=("--4bit/--no-4bit",), trl=None)
    lora: LoraSettings = setting(LoraSettings(), "A new adapter's settings (ignored when continuing an adapter).",
                                 trl=None)
    num_train_epochs: float = setting(1, "Passes over the prompt rows (seed: 1).", aliases=("--epochs",))
    max_steps: int = setting(-1, "Stop after this many optimizer steps; -1 uses the epochs.")
    per_device_train_batch_size: int = setting(1, "Completions per device per micro-batch (seed: 1).",
                                               aliases=("--batch-size",))
    gradient_accumulation_steps: int = setting(4, "Micro-batches per optimizer step (seed: 4).",
                                               aliases=("--grad-accum",))
    learning_rate: float = setting(5e-6, "Learning rate (seed: 5e-6).")
    lr_scheduler_type: str = setting("linear", "Learning-rate schedule (TrainingArguments' default).",
                                     aliases=("--lr-scheduler",))
    num_generations: int = setting(4, "Completions sampled per prompt (the GRPO group).")
    max_completion_length: int = setting(1024, "Longest completion in tokens (the seed's max_new_tokens).")
    temperature: float = setting(0.7, "Sampling temperature (the seed's inference temperature).")
    top_p: float = setting(0.9, "Nucleus sampling mass.")
    top_k: int = setting(50, "Top-k filter.")
    repetition_penalty: float = setting(1.1, "Repetition penalty.")
    beta: float = setting(0.0, "KL coefficient against the reference model (0: no reference model).")
    disable_dropout: bool = setting(True, "Switch dropout off during GRPO (sampling and both log-prob passes).")
    loss_type: str = setting("dapo", "TRL loss aggregation.")
    scale_rewards: str = setting("group", "Reward scaling for advantages: group, batch or none.")
    reward: str = setting("seed", "Reward: seed (max(0, 1 - eps), eps = error in product-state gaps) or shaped.",
                          trl=None)
    reward_workers: int | None = setting(
        None, "Processes judging completions in parallel (None: one per core; 0: in the training process).",
        trl=None)
    reward_seed: int = setting(0, "Seed of the barren-plateau sampler and VQE restarts when judging completions.",
                               trl=None)
    use_vllm: bool | None = setting(
        None, "Generate with vLLM (colocated); None: when vllm is installed and CUDA present.",
        aliases=("--vllm/--no-vllm",), trl=None)  # resolved for the machine: grpo.resolve_vllm
    rollout: str = setting(
        "trl",
        "Who samples completions: trl (TRL's generate, or vLLM with use_vllm) or graph (the project's CUDA-graph "
        "decoder on a plain copy of the policy with the current LoRA merged; training/rollout.py).",
        trl=None)
    rollout_compile: bool = setting(False, "graph rollouts: torch.compile the decode step first (~1 min per shape).",
                                    trl=None)
    vllm_gpu_memory_utilization: float = setting(0.3, "Fraction of GPU memory vLLM may take in colocate mode.")
    bf16: bool = setting(True, "bfloat16 mixed precision (off on CPU).")
    optim: str = setting("adamw_8bit", "Optimizer (adamw_torch on CPU).")
    weight_decay: float = setting(0.01, "Decoupled weight decay (as in SFT).")
    max_grad_norm: float = setting(1.0, "Gradient clipping norm (as in SFT).")
    logging_steps: int = setting(1, "Log every this many steps.")
    save_steps: int = setting(500, "Save a trainer checkpoint every this many steps.")
    save_total_limit: int = setting(3, "Trainer checkpoints kept.")
    seed: int = setting(42, "Trainer seed (data order, sampling).")
    dataloader_num_workers: int = setting(0, "Data-loading workers (prompt rows are tiny).",
                                          aliases=("--dataloader-workers",))
