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
from typing import Any

from .sft_config import SEED_BASE_MODEL, LoraSettings


def _f(default: Any, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class GRPOSettings:
    """Model, rollout, reward and optimisation settings of a GRPO run."""

    base_model: str = _f(
        SEED_BASE_MODEL, "Base model (must be the SFT adapter's base when --adapter is given)."
    )
    backend: str = _f("auto", "unsloth is not used for GRPO: peft-4bit on CUDA with bitsandbytes, else peft.")
    load_in_4bit: bool = _f(True, "Quantise the frozen base to 4-bit NF4 on CUDA.")
    lora: LoraSettings = _f(LoraSettings(), "A new adapter's settings (ignored when continuing an adapter).")
    num_train_epochs: float = _f(1, "Passes over the prompt rows (seed: 1).")
    max_steps: int = _f(-1, "Stop after this many optimizer steps; -1 uses the epochs.")
    per_device_train_batch_size: int = _f(1, "Completions per device per micro-batch (seed: 1).")
    gradient_accumulation_steps: int = _f(4, "Micro-batches per optimizer step (seed: 4).")
    learning_rate: float = _f(5e-6, "Learning rate (seed: 5e-6).")
    lr_scheduler_type: str = _f("linear", "Learning-rate schedule (TrainingArguments' default).")
    num_generations: int = _f(4, "Completions sampled per prompt (the GRPO group).")
    max_completion_length: int = _f(1024, "Longest completion in tokens (the seed's max_new_tokens).")
    temperature: float = _f(0.7, "Sampling temperature (the seed's inference temperature).")
    top_p: float = _f(0.9, "Nucleus sampling mass.")
    top_k: int = _f(50, "Top-k filter.")
    repetition_penalty: float = _f(1.1, "Repetition penalty.")
    beta: float = _f(0.0, "KL coefficient against the reference model (0: no reference model).")
    disable_dropout: bool = _f(True, "Switch dropout off during GRPO (sampling and both log-prob passes).")
    loss_type: str = _f("dapo", "TRL loss aggregation.")
    scale_rewards: str = _f("group", "Reward scaling for advantages: group, batch or none.")
    reward: str = _f("seed", "Reward: seed (max(0, 1 - eps), eps = error in product-state gaps) or shaped.")
    reward_workers: int | None = _f(
        None, "Processes judging completions in parallel (None: one per core; 0: in the training process)."
    )
    reward_seed: int = _f(0, "Seed of the barren-plateau sampler and VQE restarts when judging completions.")
    use_vllm: bool | None = _f(
        None, "Generate with vLLM (colocated); None: when vllm is installed and CUDA present."
    )
    rollout: str = _f(
        "trl",
        "Who samples completions: trl (TRL's generate, or vLLM with use_vllm) or graph (the project's CUDA-graph "
        "decoder on a plain copy of the policy with the current LoRA merged; training/rollout.py).",
    )
    rollout_compile: bool = _f(False, "graph rollouts: torch.compile the decode step first (~1 min per shape).")
    vllm_gpu_memory_utilization: float = _f(0.3, "Fraction of GPU memory vLLM may take in colocate mode.")
    bf16: bool = _f(True, "bfloat16 mixed precision.")
    optim: str = _f("adamw_8bit", "Optimizer.")
    weight_decay: float = _f(0.01, "Decoupled weight decay (as in SFT).")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (as in SFT).")
    logging_steps: int = _f(1, "Log every this many steps.")
    save_steps: int = _f(500, "Save a trainer checkpoint every this many steps.")
    save_total_limit: int = _f(3, "Trainer checkpoints kept.")
    seed: int = _f(42, "Trainer seed (data order, sampling).")
    dataloader_num_workers: int = _f(0, "Data-loading workers (prompt rows are tiny).")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lora"]["target_modules"] = list(self.lora.target_modules)
        return out

    def with_overrides(self, *, lora: dict[str, Any] | None = None, **changes: Any) -> GRPOSettings:
        if lora:
            changes["lora"] = dataclasses.replace(self.lora, **lora)
        return dataclasses.replace(self, **changes)
