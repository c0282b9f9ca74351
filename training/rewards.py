"""Verifiable rewards for GRPO: each completion's code is judged by the sandboxed evaluation cascade on the
goal
of its prompt row, and the reward is computed from the stored-kind metrics, never from anything the code
printed.

- ``seed`` (default): ``max(0, 1 - eps)``, eps = (E - E0) / (E_ref - E0), the VQE error in units of the goal's
  gap between the best product state and the ground energy (``workers/evaluation/rewards``; docs/scoring.md
  explains why the seed document's literal ``max(0, 1 - 10 * error)`` in Hartree is only recorded, as
  ``seed_reward_literal``: it is not comparable across the goals a GRPO batch mixes);
- ``shaped``: the scorer's shaped reward (validity, barren plateau, energy, gate cost;
  ``workers/evaluation/rewards``).

Anything that is not ``valid`` (no code, a syntax error, an exception, a timeout, a failed verification, an
energy below the exact one) earns 0 under both kinds.

TRL calls a reward function as ``f(prompts=..., completions=..., completion_ids=..., **columns)`` where
``columns`` are the dataset's other columns (one entry per completion): ``goal_spec`` is the one used here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .errors import TrainingError
from .evaluate_pool import EvaluationPool, Verdict

REWARD_KINDS = ("seed", "shaped")


class CircuitReward:
    """A TRL reward function backed by an :class:`EvaluationPool`. Call ``close()`` (or use ``with``) when
    done."""

    def __init__(
        self,
        kind: str = "seed",
        *,
        pool: EvaluationPool | None = None,
        workers: int | None = None,
        seed: int = 0,
        config=None,
    ) -> None:
        if kind not in REWARD_KINDS:
            raise TrainingError(f"reward kind must be one of {', '.join(REWARD_KINDS)}, got {kind!r}")
        self.kind = kind
        self.__name__ = f"{kind}_reward"  # TRL names the reward's log column after the function
        self.pool = pool if pool is not None else EvaluationPool(workers=workers, seed=seed, config=config)
        self.last: list[Verdict] = []
        """Verdicts of the most recent call (for logging and tests)."""
        self.seconds = 0.0
        """Wall time spent inside reward calls so far (the trainer waits for it: rollouts block on rewards)."""

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] = (),
        *,
        goal_spec: Sequence[str] | None = None,
        log_metric=None,
        log_extra=None,
        **_columns: Any,
    ) -> list[float]:
        if goal_spec is None:
            raise TrainingError(
                "the reward function needs the 'goal_spec' column; train on a `qmind export grpo` file"
            )
        started = time.perf_counter()
        verdicts = self.pool.judge_completions(list(completions), list(goal_spec))
        elapsed = time.perf_counter() - started
        self.seconds += elapsed
        self.last = verdicts
        rewards = [v.reward(self.kind) for v in verdicts]
        if log_metric is not None and verdicts:
            n = len(verdicts)
            log_metric("code_extracted", sum(v.status != "no-code" for v in verdicts) / n)
            log_metric("verified", sum(v.verified for v in verdicts) / n)
            log_metric("valid", sum(v.status == "valid" for v in verdicts) / n)
            log_metric("reward_seconds", elapsed)
        if log_extra is not None:
            log_extra("status", [v.status for v in verdicts])
        return rewards

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> CircuitReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
