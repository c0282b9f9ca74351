"""Settings of ``qmind train base``: the goals a base model learns from, the goals it never sees, two sizes.

Held out (never in the corpus, whatever the store holds): the whole ``heisenberg`` family (periodic and open, every
size) and every goal of ``HELD_OUT_QUBITS`` qubits. ``EVAL_GOALS`` are the held-out goals the learning benchmark
and ``qmind eval-model`` measure on: a family never seen (heisenberg-4, heisenberg-6) and a size never seen
(tfim-8, xxz-8).
"""

from __future__ import annotations

import dataclasses

from .fields import Settings, setting

TRAIN_FAMILIES: tuple[str, ...] = ("tfim", "xxz", "xy", "tfim-open", "xxz-open", "xy-open")
TRAIN_SIZES: tuple[int, ...] = (4, 5, 6)
TRAIN_EXTRA: tuple[str, ...] = ("h2",)
HELD_OUT_FAMILIES: tuple[str, ...] = ("heisenberg", "heisenberg-open")
HELD_OUT_QUBITS = 8
EVAL_GOALS: tuple[str, ...] = ("heisenberg-4", "heisenberg-6", "tfim-8", "xxz-8")


def train_goal_names() -> list[str]:
    return [f"{family}-{n}" for family in TRAIN_FAMILIES for n in TRAIN_SIZES] + list(TRAIN_EXTRA)


def is_held_out(goal) -> bool:
    """A goal whose family or size the base model must never see (checked on the goal, not on its name)."""
    family = goal.name.rsplit("-", 1)[0] if goal.name.rsplit("-", 1)[-1].isdigit() else goal.name
    return family in HELD_OUT_FAMILIES or goal.num_qubits == HELD_OUT_QUBITS


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """A Qwen2 configuration's size fields."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    """Tokenizer vocabulary (BPE merges learned on the corpus)."""


SIZES: dict[str, ModelShape] = {
    # ~0.9 M parameters: stops within 10 min on 2 CPU cores (how far it gets depends on the load)
    "cpu": ModelShape(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=384, vocab_size=2048),
    # ~25 M parameters: 642 steps of 32 sequences in 90 s on one H200 (docs/training.md)
    "gpu": ModelShape(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                      intermediate_size=1536, vocab_size=4096),
}


@dataclasses.dataclass(frozen=True)
class BaseSettings(Settings):
    """One ``qmind train base`` run."""

    size: str = setting("cpu", "cpu (~0.9 M parameters) or gpu (~25 M parameters).")
    programs_per_goal: int = setting(48, "Procedural programs per training goal in the corpus.")
    max_steps: int = setting(2000, "Optimizer steps at most.")
    time_budget_s: float = setting(540.0, "Stop training when the whole run (corpus included) has taken this long.",
                                   aliases=("--time-budget",))
    batch_size: int = setting(8, "Sequences per optimizer step.")
    learning_rate: float = setting(2e-3, "Peak AdamW learning rate (linear warm-up over 5 %, then cosine).")
    weight_decay: float = setting(0.01, "AdamW weight decay.")
    max_length: int = setting(1536, "Longest sequence in tokens (longer examples are left out).")
    seed: int = setting(0, "Seeds the corpus, the initial weights and the batch order.")
    store_candidates: int = setting(2000, "Verified store candidates of training goals added to the corpus at most.")
    workers: int = setting(0, "Processes writing procedural programs (0: one per core).")
    threads: int = setting(0, "CPU threads for training (0: the first steps time one thread against every core and "
                              "keep the faster; on a loaded machine one thread often wins).")

    def shape(self) -> ModelShape:
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
        return SIZES[self.size]

