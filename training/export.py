"""Datasets out of the store, in the formats TRL reads.

- ``sft``: conversational ``messages`` (system, user, assistant = the candidate's code in a ```python block)
  for verified, barren-plateau-free candidates within an energy-error threshold, de-duplicated by circuit
  (fingerprint, else code hash) per goal, with a ``split`` column (train / eval) that keeps every goal on one
  side.
- ``grpo``: conversational ``prompt`` rows plus the goal's columns, which GRPOTrainer hands to reward
  functions.
- ``rewards``: prompt, completion, reward components, model version and temperature of every judged candidate.

Each export writes ``FILE.meta.json`` beside the file (see ``dataset_files``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine

from db.session import redact, session_scope
from workers.evaluation.goals import Goal, get_goal, goal_from_spec
from workers.evaluation.results import SCORER_VERSION
from workers.generation.prompts import SYSTEM_PROMPT, render_prompt

from . import store_rows as Q
from .dataset_files import utc_now, write_rows
from .errors import EmptyExportError, TrainingError

PROMPT_SOURCES = ("stored", "goal")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: str
    rows: int
    meta: dict


def assistant_content(code: str) -> str:
    """The assistant turn of an SFT example: the code as a fenced python block (what extraction reads
    back)."""
    return f"```python\n{code.rstrip()}\n```"


def messages_for(system_prompt: str | None, prompt: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt or SYSTEM_PROMPT},
        {"role": "user", "content": prompt},
    ]


def split_goals(
    names: Iterable[str], *, eval_fraction: float, seed: int, eval_goals: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(train goals, eval goals), deterministic by ``seed``. Explicit ``eval_goals`` win; otherwise a shuffled
    ``eval_fraction`` of the goals (at least one, at most all but one, when there are two or more)."""
    names = sorted(set(names))
    explicit = sorted(set(eval_goals))
    if explicit:
        unknown = [g for g in explicit if g not in names]
        if unknown:
            raise TrainingError(
                f"--eval-goals {unknown} have no rows in this export; goals with rows: {names}"
            )
        return [g for g in names if g not in explicit], explicit
    if not 0.0 <= eval_fraction < 1.0:
        raise TrainingError(f"eval fraction must be in [0, 1), got {eval_fraction}")
    if len(names) < 2 or eval_fraction == 0.0:
        return names, []
    shuffled = names[:]
    random.Random(seed).shuffle(shuffled)
    k = min(len(names) - 1, max(1, round(eval_fraction * len(names))))
    eval_set = sorted(shuffled[:k])
    return [g for g in names if g not in eval_set], eval_set


def circuit_key(row: dict[str, Any]) -> str:
    """What makes two completions the same circuit: the circuit fingerprint when known, else the code hash."""
    return row.get("circuit_fingerprint") or f"code:{row['code_sha256']}"


def dedupe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (goal, circuit): the lowest energy error, then the earliest candidate."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["vqe_error"], r["candidate_id"])):
        best.setdefault((row["goal"], circuit_key(row)), row)
    return sorted(best.values(), key=lambda r: r["candidate_id"])


class _Goals:
    """Goal objects rebuilt from stored specs, once per spec hash."""

    def __init__(self) -> None:
        self._cache: dict[str, Goal] = {}

    def get(self, spec_hash: str, spec: dict) -> Goal:
        if spec_hash not in self._cache:
            self._cache[spec_hash] = goal_from_spec(spec)
        return self._cache[spec_hash]


def _base_meta(kind: str, engine: Engine, filters: Q.StoreFilters, session, stmt) -> dict[str, Any]:
    return {
        "kind": kind,
        "created_at": utc_now(),
        "store": redact(engine.url),
        "filters": filters.to_dict(),
        "scorer_version_now": SCORER_VERSION,
        "query": Q.sql_text(session, stmt),
    }


# ---- sft ---------------------------------------------------------------------------------------------------
def export_sft(
    engine: Engine,
    out,
    *,
    filters: Q.StoreFilters = Q.StoreFilters(),
    quality: Q.SFTQuality = Q.SFTQuality(),
    eval_fraction: float = 0.1,
    eval_goals: Iterable[str] = (),
    seed: int = 42,
    prompt_source: str = "stored",
    fmt: str | None = None,
) -> ExportResult:
    """Write the SFT dataset (see the module docstring); ``prompt_source='goal'`` re-renders every prompt from
    its goal with an empty CONTEXT instead of using the prompt the loop asked."""
    if prompt_source not in PROMPT_SOURCES:
        raise TrainingError(f"prompt source must be one of {PROMPT_SOURCES}, got {prompt_source!r}")
    if not (quality.max_error >= 0 and math.isfinite(quality.max_error)):
        raise TrainingError(f"--max-error must be a finite number >= 0, got {quality.max_error}")
    goals = _Goals()
    with session_scope(engine) as session:
        by_status = Q.count_by_status(session, filters)
        stmt = Q.sft_statement(filters, quality)
        rows = Q.fetch(session, stmt)
        unprompted = len(Q.fetch(session, Q.sft_statement(filters, quality, rendered_only=False))) - len(rows)
        meta = _base_meta("sft", engine, filters, session, stmt)
    if not rows:
        raise _nothing_passed(quality, by_status, unprompted)
    kept = dedupe(rows)
    train_goals, eval_set = split_goals(
        (r["goal"] for r in kept), eval_fraction=eval_fraction, seed=seed, eval_goals=eval_goals
    )
    out_rows = [_sft_row(r, split="eval" if r["goal"] in eval_set else "train", prompt_source=prompt_source,
                         goals=goals) for r in kept]
    n_eval = sum(1 for r in out_rows if r["split"] == "eval")
    meta.update(
        quality=quality.to_dict(),
        prompt_source=prompt_source,
        seed=seed,
        eval_fraction=eval_fraction,
        split={
            "train_goals": train_goals,
            "eval_goals": eval_set,
            "train_rows": len(out_rows) - n_eval,
            "eval_rows": n_eval,
        },
        counts={
            "candidates_by_status": by_status,
            "passed_quality": len(rows),
            "not_a_rendered_prompt": unprompted,
            "after_dedup": len(kept),
            "duplicates_removed": len(rows) - len(kept),
        },
    )
    full = write_rows(out_rows, out, fmt=fmt, meta=meta)
    return ExportResult(full["file"], len(out_rows), full)


def _nothing_passed(quality: Q.SFTQuality, by_status: dict, unprompted: int) -> EmptyExportError:
    return EmptyExportError(
        f"no candidate passed the SFT filters (valid, vqe_error <= {quality.max_error}"
        f"{'' if quality.allow_barren_plateau else ', no barren plateau'}); "
        f"candidates by status under the "
        f"store filters: {by_status or 'none'}"
        f"{f' ({unprompted} passed but answered no rendered prompt: baselines)' if unprompted else ''}. "
        f"Loosen --max-error or evaluate more candidates"
    )


_SFT_COLUMNS = ("goal", "spec_hash", "num_qubits", "code_sha256", "circuit_fingerprint", "vqe_error", "seed_reward",
                "shaped_reward", "depth", "num_two_qubit_gates", "candidate_id", "evaluation_id", "model_version",
                "temperature", "run_id", "scorer_version")
"""Store columns an SFT row carries beside its messages and split (what it was, how it scored, where from)."""


def _sft_row(r: dict[str, Any], *, split: str, prompt_source: str, goals: _Goals) -> dict[str, Any]:
    """One SFT row: the prompt (as asked, or re-rendered from the goal) and the verified code as the answer."""
    if prompt_source == "goal":
        prompt, system = render_prompt(goals.get(r["spec_hash"], r["goal_spec"]), ""), SYSTEM_PROMPT
    else:
        prompt, system = r["prompt"], r["system_prompt"]
    messages = [*messages_for(system, prompt), {"role": "assistant", "content": assistant_content(r["code"])}]
    return {"messages": messages, "split": split, **{c: r[c] for c in _SFT_COLUMNS}}


# ---- grpo --------------------------------------------------------------------------------------------------
def goal_columns(goal: Goal, *, exact_energy: float | None = None) -> dict[str, Any]:
    """The columns GRPOTrainer passes to reward functions (keyword arguments, one list entry per
    completion)."""
    spec = goal.to_spec()
    return {
        "goal": goal.name,
        "num_qubits": goal.num_qubits,
        "hamiltonian": [{"label": label, "coeff": float(c)} for label, c in spec["pauli_terms"]],
        "exact_energy": float(goal.exact_energy if exact_energy is None else exact_energy),
        "max_depth": goal.max_depth,
        "allowed_gates": list(goal.allowed_gates),
        "goal_spec": json.dumps(spec, sort_keys=True),
        "spec_hash": goal.spec_hash,
    }


def export_grpo(
    engine: Engine | None,
    out,
    *,
    filters: Q.StoreFilters = Q.StoreFilters(),
    fresh_prompts: bool = False,
    repeat: int = 1,
    max_per_goal: int | None = None,
    fmt: str | None = None,
) -> ExportResult:
    """Write GRPO prompt rows: the prompts the loop asked (default), or with ``fresh_prompts`` one
    context-free
    prompt per goal (goals from the store, or built-in / YAML goals named in ``filters.goals``), ``repeat``
    times."""
    if repeat < 1:
        raise TrainingError(f"--repeat must be at least 1, got {repeat}")
    meta: dict[str, Any] = {
        "kind": "grpo",
        "created_at": utc_now(),
        "filters": filters.to_dict(),
        "fresh_prompts": fresh_prompts,
        "repeat": repeat,
        "max_per_goal": max_per_goal,
    }
    stored: list[dict[str, Any]] = []
    if engine is not None:
        with session_scope(engine) as session:
            stmt = Q.goals_statement(filters.goals) if fresh_prompts else Q.prompts_statement(filters)
            stored = Q.fetch(session, stmt)
            meta.update(store=redact(engine.url), query=Q.sql_text(session, stmt))
    elif not fresh_prompts:
        raise TrainingError(
            "GRPO prompts from the store need a store; give --fresh-prompts with --goals otherwise"
        )
    per_goal: dict[str, int] = {}
    rows = _stored_grpo_rows(stored, fresh_prompts=fresh_prompts, max_per_goal=max_per_goal, per_goal=per_goal)
    if fresh_prompts:
        missing = [name for name in filters.goals if name not in per_goal]
        for name in missing:  # goals named but absent from the store: built-in names or goal files
            goal = get_goal(name)
            per_goal[goal.name] = 1
            rows.append(
                {
                    "prompt": messages_for(SYSTEM_PROMPT, render_prompt(goal, "")),
                    **goal_columns(goal),
                    "source": "builtin-goal",
                    "batch_id": None,
                }
            )
    if not rows:
        raise EmptyExportError(
            "no prompts matched: the store has no generated batches under these filters "
            f"({filters.to_dict()}); run a discovery first or use --fresh-prompts --goals ..."
        )
    rows = [dict(r) for r in rows for _ in range(repeat)]
    meta["counts"] = {"prompts_per_goal": per_goal, "rows": len(rows)}
    full = write_rows(rows, out, fmt=fmt, meta=meta)
    return ExportResult(full["file"], len(rows), full)


def _stored_grpo_rows(stored: list[dict[str, Any]], *, fresh_prompts: bool, max_per_goal: int | None,
                      per_goal: dict[str, int]) -> list[dict[str, Any]]:
    """Prompt rows from the store (the prompts asked, or with ``fresh_prompts`` one context-free prompt per stored
    goal), at most ``max_per_goal`` a goal; ``per_goal`` counts them."""
    goals, rows = _Goals(), []
    for r in stored:
        if max_per_goal is not None and per_goal.get(r["goal"], 0) >= max_per_goal:
            continue
        goal = goals.get(r["spec_hash"], r["goal_spec"])
        prompt = render_prompt(goal, "") if fresh_prompts else r["prompt"]
        system = SYSTEM_PROMPT if fresh_prompts else r["system_prompt"]
        per_goal[r["goal"]] = per_goal.get(r["goal"], 0) + 1
        rows.append(
            {
                "prompt": messages_for(system, prompt),
                **goal_columns(goal, exact_energy=r["goal_exact_energy"]),
                "source": "store-goal" if fresh_prompts else "store-prompt",
                "batch_id": r.get("batch_id"),
            }
        )
    return rows


# ---- rewards -----------------------------------------------------------------------------------------------
def export_rewards(
    engine: Engine, out, *, filters: Q.StoreFilters = Q.StoreFilters(), fmt: str | None = None
) -> ExportResult:
    """Write one row per judged candidate: prompt, completion (the raw text), reward components, model,
    temperature.
    Completions without code count as judged (status ``no-code``, rewards 0)."""
    with session_scope(engine) as session:
        stmt = Q.candidates_statement(filters, with_uncoded=True)
        rows = Q.fetch(session, stmt)
        meta = _base_meta("rewards", engine, filters, session, stmt)
    if not rows:
        raise EmptyExportError(f"no judged candidates under the store filters {filters.to_dict()}")
    out_rows = []
    by_status: dict[str, int] = {}
    for r in rows:
        status = r["status"] if r["code"] is not None else "no-code"
        by_status[status] = by_status.get(status, 0) + 1
        out_rows.append(
            {
                "prompt": messages_for(r["system_prompt"], r["prompt"]),
                "completion": [{"role": "assistant", "content": r["raw"]}],
                "code": r["code"],
                "code_sha256": r["code_sha256"],
                "extraction_error": r["extraction_error"],
                "goal": r["goal"],
                "num_qubits": r["num_qubits"],
                "status": status,
                "stage": r["stage"],
                "seed_reward": float(r["seed_reward"] or 0.0),
                "shaped_reward": float(r["shaped_reward"] or 0.0),
                "reward_version": r["reward_version"],
                "reward_components": json.dumps(r["reward_components"] or {}, sort_keys=True),
                "vqe_error": r["vqe_error"],
                "vqe_relative_error": r["vqe_relative_error"],
                "has_barren_plateau": r["has_barren_plateau"],
                "depth": r["depth"],
                "num_two_qubit_gates": r["num_two_qubit_gates"],
                # goal sets (vqe_error is the worst member's) and the hardware stage; None elsewhere
                "set_mean_error": r["set_mean_error"],
                "set_extrapolation_error": r["set_extrapolation_error"],
                "hw_two_qubit_gates": r["hw_two_qubit_gates"],
                "hw_noisy_error": r["hw_noisy_error"],
                "circuit_fingerprint": r["circuit_fingerprint"],
                "model_version": r["model_version"],
                "model_version_id": r["model_version_id"],
                "base_model": r["base_model"],
                "adapter_sha256": r["adapter_sha256"],
                "temperature": r["temperature"],
                "generator": r["generator"],
                "run_id": r["run_id"],
                "iteration": r["iteration"],
                "batch_id": r["batch_id"],
                "candidate_id": r["candidate_id"],
                "evaluation_id": r["evaluation_id"],
                "scorer_version": r["scorer_version"],
            }
        )
    meta["counts"] = {"rows": len(out_rows), "by_status": by_status}
    full = write_rows(out_rows, out, fmt=fmt, meta=meta)
    return ExportResult(full["file"], len(out_rows), full)
