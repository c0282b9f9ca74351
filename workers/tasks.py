"""Thin Celery tasks: unpack ids, call the pure code (evaluation cascade, generators), write through ``db/``.

Every task result is written in one transaction that commits before the task returns (and so before the
message is acknowledged: ``task_acks_late``). Transient broker/database errors are retried with exponential
backoff; a candidate's own failure is a verdict, never a retry.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from db import writes
from db.queries import candidate_work, reusable_evaluation
from db.session import session_scope
from workers.evaluation import results as R
from workers.evaluation.results import SCORER_VERSION

from . import leases, records  # noqa: F401  (importing leases connects the workers' lease heartbeat to Celery)
from .app import EVALUATE_TASK, GENERATE_TASK, app, current_config
from .launch import is_transient, retry_delay
from .model_version import is_registry_name, model_version_fields, resolve_registered
from .store import get_engine

log = logging.getLogger(__name__)

def _retry(task, exc: BaseException):
    config = current_config(task.app)
    delay = retry_delay(config, task.request.retries)
    log.warning("transient error in %s (retry %d/%d in %.1f s): %s", task.name, task.request.retries + 1,
                config.retry_max, delay, exc)
    return task.retry(exc=exc, countdown=delay, max_retries=config.retry_max)


def worker_name(task) -> str:
    return task.request.hostname or socket.gethostname()


# ---- evaluation ---------------------------------------------------------------------------------------------------
Lookup = Callable[[str], "tuple | None"]
"""reuse key -> (bp, vqe, source) of an earlier evaluation a renamed copy may take (``records.reusable_scores``)."""


def _store_lookup(engine, work) -> Lookup:
    """The store lookup for one candidate: a valid evaluation of the same goal and scorer version under the same
    reuse key (the same circuits at every scored size), of other code."""

    def lookup(reuse_key: str):
        with session_scope(engine) as session:
            row = reusable_evaluation(session, reuse_key=reuse_key, goal_id=work.goal_id,
                                      scorer_version=SCORER_VERSION, code_sha256=work.code_sha256)
            return None if row is None else records.reusable_scores(row)

    return lookup


def _evaluate(code: str, goal_spec: dict, *, seed: int, soft_limit: float, lookup: Lookup) -> R.EvaluationResult:
    """prepare (sandbox, verification, reuse key) -> lookup in the store -> score (or copy the scores found).
    Any failure of the evaluation itself becomes a ``failed`` verdict; a transient store error is raised (retried)."""
    try:
        from workers.evaluation.cascade import prepare, reusable, reuse_scores, score
        from workers.evaluation.goals import goal_from_spec
        from workers.settings import scoring_settings

        goal = goal_from_spec(goal_spec)
        config = scoring_settings()
        prepared = prepare(code, goal, seed=seed, config=config)
        found = lookup(prepared.reuse_key) if reusable(prepared) else None
        if found is not None:
            bp, vqe, source = found
            return reuse_scores(prepared, bp, vqe, source=source)
        return score(prepared, config=config)
    except SoftTimeLimitExceeded:
        return R.EvaluationResult(status=R.STATUS_TIMEOUT, stage="queue", seed=seed, errors=(
            f"the evaluation took longer than the soft time limit of {soft_limit:g} s",))
    except Exception as exc:  # the cascade judges candidates; an exception here is not the candidate's verdict
        if is_transient(exc):
            raise
        log.exception("evaluation core failed")
        return records.core_failure(exc, stage="queue", seed=seed)


def run_evaluation(task, candidate_id: int, seed: int, evaluate=None) -> dict[str, Any]:
    """The body of ``evaluate_candidate``: count the attempt (committed), evaluate, store the verdict (committed).

    ``evaluate(code, goal_spec, seed=..., soft_limit=..., lookup=...)`` returns an ``EvaluationResult`` (or its
    ``to_dict()``); it defaults to ``_evaluate``; ``benchmarks/queue_tasks.py`` passes a trivial one to measure
    the queue and store alone.
    """
    evaluate = evaluate or _evaluate
    config = current_config(task.app)
    engine = get_engine(config)
    try:
        with session_scope(engine) as session:
            work = candidate_work(session, candidate_id)
            if work.code is None:
                return {"candidate_id": candidate_id, "evaluation_id": None, "status": records.NO_CODE,
                        "attempts": 0}
            key = writes.EvaluationKey(work.code_sha256, work.goal_id, SCORER_VERSION)
            attempt = writes.begin_attempt(session, key, max_attempts=config.max_attempts,
                                           retries=task.request.retries, worker_host=worker_name(task), seed=seed)
        if not attempt.proceed:
            return {"candidate_id": candidate_id, "evaluation_id": attempt.evaluation_id, "status": attempt.status,
                    "attempts": attempt.attempts}
        cols = records.columns(evaluate(work.code, work.goal_spec, seed=seed,
                                        soft_limit=config.evaluate_soft_time_limit_s,
                                        lookup=_store_lookup(engine, work)))
        with session_scope(engine) as session:
            writes.record_evaluations(session, [(key, cols)])
    except Exception as exc:
        if is_transient(exc):
            raise _retry(task, exc) from exc
        raise
    return {"candidate_id": candidate_id, "evaluation_id": attempt.evaluation_id, "status": cols["status"],
            "attempts": attempt.attempts}


@app.task(name=EVALUATE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, acks_on_timeout=False)
def evaluate_candidate(self, candidate_id: int, seed: int = 0) -> dict[str, Any]:
    """Evaluate one stored candidate on the goal of its batch; returns a small summary dict.

    The attempt is counted and committed before the work starts; an evaluation that is already final is not
    repeated (a redelivered or duplicated message costs one read). A hard time limit rejects the message back
    to the queue (it counts as an attempt that died), so a candidate that hangs is failed after N attempts.
    """
    return run_evaluation(self, candidate_id, seed)


# ---- generation ---------------------------------------------------------------------------------------------------
_generators: dict[str, Any] = {}
_ADAPTER_FIELDS = ("adapter", "adapter_id")


def _generator(settings: dict[str, Any], engine=None):
    """The generator for these settings, built once per worker process (the model loads on first use).

    Generators are cached per base model and sampling settings, not per adapter: the adapter a task names is
    resolved at task time (``latest`` / ``quantum-mind-vN`` through the store's registry, so a newly registered
    version is picked up by the next task) and a cached generator switches to it in place (``use_adapter``), with
    no restart and no second copy of the base. A backend that cannot switch is rebuilt for the new adapter.
    """
    wanted = settings.get("adapter")
    if engine is not None and is_registry_name(wanted):
        with session_scope(engine) as session:
            wanted = resolve_registered(session, wanted)
    key = json.dumps({k: v for k, v in settings.items() if k not in _ADAPTER_FIELDS}, sort_keys=True, default=str)
    cached = _generators.get(key)
    if cached is not None and hasattr(cached, "use_adapter"):
        before = cached.adapter_path
        if cached.use_adapter(wanted):
            log.info("switched adapter %s -> %s in %.3f s (no reload of the base)", before, wanted,
                     getattr(cached, "switch_seconds", 0.0))
        return cached
    if cached is None or getattr(cached, "adapter_path", None) != wanted:
        from workers.generation import build_generator
        from workers.generation.config import GeneratorConfig

        _generators[key] = build_generator(GeneratorConfig(**{**settings, "adapter": wanted}))
    return _generators[key]


def _generate(settings: dict[str, Any], goal_spec: dict, prompts: list[dict],
              engine=None) -> tuple[list[dict], str | None]:
    """Batches (as dicts) for ``prompts``, or an error message when the generator failed."""
    try:
        from workers.evaluation.goals import goal_from_spec
        from workers.generation.base import PromptRequest

        goal = goal_from_spec(goal_spec)
        requests = [PromptRequest(goal=goal, memory_context=p.get("memory_context", ""), seed=int(p.get("seed", 0)),
                                  parents=tuple(p.get("parents", ()))) for p in prompts]
        batches = _generator(settings, engine).generate(requests)
    except SoftTimeLimitExceeded:
        return [], "generation took longer than the soft time limit"
    except Exception as exc:
        if is_transient(exc):
            raise
        log.exception("generator failed")
        return [], f"the generator raised {type(exc).__name__}: {exc}"
    if len(batches) != len(prompts):
        return [], f"the generator returned {len(batches)} batches for {len(prompts)} prompts"
    return [b.to_dict() for b in batches], None


@app.task(name=GENERATE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def generate_batch(self, run_id: int, goal_id: int, iteration: int, prompts: list[dict],
                   generator: dict[str, Any]) -> dict[str, Any]:
    """Generate candidates for ``prompts`` (each ``{"prompt_index", "memory_context", "seed", "parents"}``) with
    the generator built from ``generator`` (``GeneratorConfig`` fields) and store batches and candidates.

    Prompts whose batch already exists (a redelivered message) are not generated again. Returns
    ``{"batches": [{"prompt_index", "batch_id", "candidate_ids", "status"}]}``.
    """
    from db.models import GenerationBatch
    from db.models import Goal as GoalRow

    config = current_config(self.app)
    engine = get_engine(config)
    indices = [int(p["prompt_index"]) for p in prompts]
    if len(set(indices)) != len(indices):
        raise ValueError(f"prompt_index values must be distinct, got {indices}")
    try:
        with session_scope(engine) as session:
            goal_row = session.get(GoalRow, goal_id)
            if goal_row is None:
                raise ValueError(f"no goal with id {goal_id} in the store")
            spec = goal_row.spec
            done = {i for i in indices if writes.find_batch(session, run_id=run_id, goal_id=goal_id,
                                                            iteration=iteration, prompt_index=i)}
        todo = [p for p in prompts if int(p["prompt_index"]) not in done]
        if todo:
            batches, error = _generate(generator, spec, todo, engine)
            with session_scope(engine) as session:
                for i, p in enumerate(todo):
                    batch = batches[i] if batches else {"generator": generator.get("generator", "unknown")}
                    mv_id = None if error else writes.upsert_model_version(session, **model_version_fields(batch))
                    writes.record_batch(session, run_id=run_id, goal_id=goal_id, iteration=iteration,
                                        prompt_index=int(p["prompt_index"]), batch=batch, model_version_id=mv_id,
                                        seed=int(p.get("seed", 0)), worker_host=worker_name(self), error=error)
        with session_scope(engine) as session:
            out = []
            for i in indices:
                rec = writes.find_batch(session, run_id=run_id, goal_id=goal_id, iteration=iteration, prompt_index=i)
                status = session.get(GenerationBatch, rec.batch_id).status
                out.append({"prompt_index": i, "batch_id": rec.batch_id, "candidate_ids": list(rec.candidate_ids),
                            "status": status})
    except Exception as exc:
        if is_transient(exc):
            raise _retry(self, exc) from exc
        raise
    return {"batches": out}
