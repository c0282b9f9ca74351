"""The evaluation cascade on many completions at once, for GRPO rewards and model evaluation.

Each completion's code is extracted (``workers.generation.extract``; nothing is executed in this process),
then the cascade (``workers.evaluation.cascade.evaluate_code``: sandbox, verification, barren-plateau check,
VQE, rewards) judges it against its goal, rebuilt with ``goal_from_spec``. Distinct (code, goal) pairs run in
parallel in a pool of spawned processes bounded by the machine's cores; repeated pairs (common in a GRPO
group) are judged once and cached for the life of the pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
from collections.abc import Sequence
from typing import Any

from workers.evaluation.results import STATUS_FAILED
from workers.generation.extract import extract_code
from workers.records import NO_CODE, Verdict, verdict

__all__ = ["EvaluationPool", "Verdict", "completion_text", "default_workers", "judge"]


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or (conversational) the last assistant message's content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence):
        for message in reversed(list(completion)):
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                return str(message.get("content") or "")
    return ""


def judge(code: str, goal_spec: str, seed: int, config) -> Verdict:
    """Run the cascade on one program (in a pool worker, or in-process when the pool has no workers)."""
    from workers.evaluation.cascade import evaluate_code
    from workers.evaluation.goals import goal_from_spec

    sha = hashlib.sha256(code.encode("utf-8")).hexdigest()
    try:
        goal = goal_from_spec(json.loads(goal_spec))
        result = evaluate_code(code, goal, seed=seed, config=config)
    except Exception as exc:  # the cascade judges code; an exception here is a bug or a bad goal, not a verdict
        return Verdict(STATUS_FAILED, "pool", (f"the evaluation core raised {type(exc).__name__}: {exc}",), sha)
    return verdict(result, sha)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class EvaluationPool:
    """Judges (completion, goal spec) pairs in parallel; see the module docstring. Use as a context
    manager."""

    def __init__(self, *, workers: int | None = None, seed: int = 0, config=None) -> None:
        from workers.settings import scoring_settings

        self.workers = default_workers() if workers is None else max(0, int(workers))
        self.seed = seed
        self.config = config if config is not None else scoring_settings()
        self._cache: dict[tuple[str, str], Verdict] = {}
        self._executor: cf.ProcessPoolExecutor | None = None

    def _pool(self) -> cf.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = cf.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor

    def judge_codes(self, items: Sequence[tuple[str | None, str]]) -> list[Verdict]:
        """Verdicts for (code or None, goal spec JSON) pairs, in order."""
        todo: dict[tuple[str, str], tuple[str, str]] = {}
        keys: list[tuple[str, str] | None] = []
        for code, spec in items:
            if code is None:
                keys.append(None)
                continue
            key = (
                hashlib.sha256(code.encode("utf-8")).hexdigest(),
                hashlib.sha256(spec.encode()).hexdigest(),
            )
            keys.append(key)
            if key not in self._cache:
                todo[key] = (code, spec)
        if todo:
            if self.workers == 0 or len(todo) == 1 and self._executor is None:
                for key, (code, spec) in todo.items():
                    self._cache[key] = judge(code, spec, self.seed, self.config)
            else:
                futures = {
                    key: self._pool().submit(judge, code, spec, self.seed, self.config)
                    for key, (code, spec) in todo.items()
                }
                for key, future in futures.items():
                    try:
                        self._cache[key] = future.result()
                    except (
                        Exception
                    ) as exc:  # a worker died (killed, out of memory): not the candidate's verdict
                        self._cache[key] = Verdict(STATUS_FAILED, "pool", (f"evaluation worker failed: {exc!r}",))
        return [self._cache[k] if k is not None else None for k in keys]  # type: ignore[misc]

    def judge_completions(self, completions: Sequence[Any], goal_specs: Sequence[str]) -> list[Verdict]:
        """Extract code from each completion and judge it on its goal; no code -> status ``no-code``."""
        if len(completions) != len(goal_specs):
            raise ValueError(
                f"{len(completions)} completions but {len(goal_specs)} goal specs; expected one each"
            )
        extractions = [extract_code(completion_text(c)) for c in completions]
        verdicts = self.judge_codes([(e.code, spec) for e, spec in zip(extractions, goal_specs)])
        return [
            v if v is not None else Verdict(NO_CODE, "extract", (e.error or "no code",))
            for v, e in zip(verdicts, extractions)
        ]

    def map(self, fn, items: Sequence[tuple], *, on_error: Any = None) -> list[Any]:
        """``fn(*item)`` for each item on the pool (module-level ``fn``); a worker failure gives
        ``on_error``."""
        if self.workers == 0 or (len(items) <= 1 and self._executor is None):
            out = []
            for item in items:
                try:
                    out.append(fn(*item))
                except Exception:
                    out.append(on_error)
            return out
        futures = [self._pool().submit(fn, *item) for item in items]
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception:
                results.append(on_error)
        return results

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> EvaluationPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
