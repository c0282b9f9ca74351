"""Submit work and wait for it through the store (the source of truth), with bounded time.

The discovery loop calls these; they work the same eagerly (no broker: the work is done by the time
``submit_*`` returns) and distributed. Submitting writes nothing to the store: a broker that is down fails the
submission with a clear error before anything is half-written, and submitting the same work twice is harmless
(evaluations are keyed on code hash + goal + scorer version).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.exceptions
from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy import Engine

from db import writes
from db.models import FINAL_STATUSES, GenerationBatch
from db.queries import candidates_work, evaluation_states
from db.session import session_scope
from workers.evaluation.results import SCORER_VERSION

from . import tasks  # noqa: F401  (registers the tasks on the app)
from .app import app, current_config
from .launch import QueueWatch, generation_queue, is_transient, publish_retry_policy
from .store import get_engine

log = logging.getLogger(__name__)

_BROKER_ERRORS = (KombuOperationalError, ConnectionError, TimeoutError, OSError,
                  redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class QueueUnavailableError(RuntimeError):
    """The broker could not be reached; the message names it and says what was (not) submitted."""


class WaitTimeoutError(TimeoutError):
    """Work did not finish within the time given; ``partial`` holds what did."""

    def __init__(self, message: str, partial: dict) -> None:
        super().__init__(message)
        self.partial = partial


def check_broker(celery_app: Celery = app) -> None:
    """Connect to the broker once (bounded by the configured timeout and retries) or raise QueueUnavailableError."""
    config = current_config(celery_app)
    if config.eager:
        return
    start = time.monotonic()
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(**publish_retry_policy(config), timeout=config.broker_connect_timeout_s)
    except _BROKER_ERRORS as exc:
        raise QueueUnavailableError(
            f"cannot reach the broker at {config.redacted_broker()} after {time.monotonic() - start:.1f} s "
            f"({type(exc).__name__}: {exc}). Is Redis running, and is QMIND_BROKER_URL right? "
            f"Nothing was submitted.") from exc


def _publish(celery_app: Celery, task_name: str, sent: int, total: int, **options: Any) -> None:
    config = current_config(celery_app)
    try:
        # no time limits in the message: the worker's own (checked against its visibility timeout) apply
        celery_app.tasks[task_name].apply_async(time_limit=None, soft_time_limit=None, **options)
    except _BROKER_ERRORS as exc:
        raise QueueUnavailableError(
            f"the broker at {config.redacted_broker()} failed after {sent} of {total} tasks were submitted "
            f"({type(exc).__name__}: {exc}); those run as usual. Submit the same work again once the broker is "
            f"back: submissions are idempotent.") from exc


# ---- evaluations --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EvaluationTicket:
    """A submitted candidate: its evaluation key, or None when it has no code to evaluate."""

    candidate_id: int
    key: writes.EvaluationKey | None


def submit_evaluations(candidate_ids: Sequence[int], *, seed: int = 0, celery_app: Celery = app,
                       engine: Engine | None = None) -> list[EvaluationTicket]:
    """Queue one evaluation per distinct (code, goal) among ``candidate_ids`` on the ``cpu`` queue."""
    from .app import EVALUATE_TASK

    config = current_config(celery_app)
    engine = engine or get_engine(config)
    with session_scope(engine) as session:
        works = candidates_work(session, list(candidate_ids))
    tickets, first_of_key = [], {}
    for w in works:
        key = None if w.code is None else writes.EvaluationKey(w.code_sha256, w.goal_id, SCORER_VERSION)
        tickets.append(EvaluationTicket(w.candidate_id, key))
        if key is not None:
            first_of_key.setdefault(key, w.candidate_id)
    if first_of_key:
        check_broker(celery_app)
    for n, candidate_id in enumerate(first_of_key.values()):
        _publish(celery_app, EVALUATE_TASK, n, len(first_of_key), args=(candidate_id,), kwargs={"seed": seed},
                 queue=config.cpu_queue)
    return tickets


def resubmit_lost_evaluations(tickets: Sequence[EvaluationTicket], *, seed: int = 0, confirm_s: float = 2.0,
                              celery_app: Celery = app, engine: Engine | None = None) -> list[int]:
    """Submit again the evaluations among ``tickets`` whose message the broker lost or whose worker died (see
    ``workers.reconcile``); returns the candidate ids resubmitted. Harmless when nothing was lost: it then
    submits nothing."""
    from .app import EVALUATE_TASK
    from .reconcile import log_resubmitted, lost_evaluations

    config = current_config(celery_app)
    engine = engine or get_engine(config)
    sent: dict[writes.EvaluationKey, int] = {}
    for t in tickets:  # the candidate whose message stands for its key, as submit_evaluations chose it
        if t.key is not None:
            sent.setdefault(t.key, t.candidate_id)
    lost = lost_evaluations(sent, task_names=[EVALUATE_TASK], confirm_s=confirm_s, celery_app=celery_app,
                            engine=engine)
    for n, candidate_id in enumerate(lost):
        _publish(celery_app, EVALUATE_TASK, n, len(lost), args=(candidate_id,), kwargs={"seed": seed},
                 queue=config.cpu_queue)
    log_resubmitted(lost, "evaluations")
    return lost


def _reconcile_safely(step: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """A reconciliation step that meets a broker or store outage is skipped (and tried again next time): the
    waiting itself only reads the store, and must ride out a Redis restart."""
    from sqlalchemy.exc import OperationalError as SQLOperationalError

    try:
        step(*args, **kwargs)
    except (*_BROKER_ERRORS, QueueUnavailableError, redis.exceptions.RedisError, SQLOperationalError) as exc:
        log.warning("looking for lost messages failed (%s: %s); trying again later", type(exc).__name__, exc)


def _read_store(read: Callable[[], Any], last: Any) -> Any:
    """``read()``, or ``last`` when the store is down for a moment (a waiting submitter rides out a database
    restart as the workers do: they retry, and the wait goes on until its own deadline)."""
    try:
        return read()
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning("the store did not answer (%s: %s); waiting on", type(exc).__name__, exc)
        return last


def _evaluation_states(engine: Engine, keys) -> dict:
    with session_scope(engine) as session:
        return evaluation_states(session, list(keys))


def _statuses(tickets: Sequence[EvaluationTicket], states: dict) -> dict[int, str]:
    out = {}
    for t in tickets:
        if t.key is None:
            out[t.candidate_id] = "no-code"
        else:
            out[t.candidate_id] = states.get((t.key.code_sha256, t.key.goal_id, t.key.scorer_version)) or "queued"
    return out


def wait_for_evaluations(tickets: Sequence[EvaluationTicket], *, timeout_s: float, poll_s: float = 0.25,
                         celery_app: Celery = app, engine: Engine | None = None, seed: int = 0,
                         on_progress: Callable[[dict[int, str]], None] | None = None,
                         watch: QueueWatch | None = None) -> dict[int, str]:
    """Poll the store until every ticket's evaluation is final; returns candidate id -> status
    (``no-code`` for candidates without code). Raises WaitTimeoutError after ``timeout_s``.

    ``on_progress`` gets the candidate id -> status picture at every poll. Every ``reconcile_every_s`` of the
    queue configuration, evaluations whose message the broker lost are submitted again (with ``seed``).
    """
    config = current_config(celery_app)
    engine = engine or get_engine(config)
    deadline = time.monotonic() + timeout_s
    keys = {(t.key.code_sha256, t.key.goal_id, t.key.scorer_version) for t in tickets if t.key is not None}
    every = config.reconcile_every_s if not config.eager else 0.0
    next_reconcile = time.monotonic() + every
    states: dict = {}
    while True:
        states = _read_store(lambda: _evaluation_states(engine, keys), states)
        done = {k: s for k, s in states.items() if s in FINAL_STATUSES}
        if on_progress is not None:
            on_progress(_statuses(tickets, states))
        if len(done) == len(keys) or time.monotonic() >= deadline:
            break
        if every and time.monotonic() >= next_reconcile:
            unfinished = [t for t in tickets if t.key is not None and (t.key.code_sha256, t.key.goal_id,
                                                                      t.key.scorer_version) not in done]
            _reconcile_safely(resubmit_lost_evaluations, unfinished, seed=seed, celery_app=celery_app, engine=engine)
            next_reconcile = time.monotonic() + every
        if watch is not None:
            watch.poll()
        time.sleep(poll_s)
    out = _statuses(tickets, states)
    if len(done) < len(keys):
        unfinished = {s: sum(1 for v in out.values() if v == s) for s in set(out.values()) if s in ("queued", "pending")}
        raise WaitTimeoutError(f"{len(keys) - len(done)} of {len(keys)} evaluations unfinished after {timeout_s:g} s "
                               f"({unfinished}); are CPU workers running on queue "
                               f"'{current_config(celery_app).cpu_queue}'?", out)
    return out


def evaluate_candidates(candidate_ids: Sequence[int], *, timeout_s: float, seed: int = 0,
                        celery_app: Celery = app, engine: Engine | None = None) -> dict[int, str]:
    """Submit and wait: candidate id -> final status."""
    tickets = submit_evaluations(candidate_ids, seed=seed, celery_app=celery_app, engine=engine)
    return wait_for_evaluations(tickets, timeout_s=timeout_s, celery_app=celery_app, engine=engine, seed=seed)


# ---- generation ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BatchOutcome:
    prompt_index: int
    batch_id: int
    candidate_ids: tuple[int, ...]
    status: str
    error: str | None


def submit_generation(*, run_id: int, goal_id: int, iteration: int, prompts: Sequence[dict],
                      generator: dict[str, Any], celery_app: Celery = app) -> None:
    """Queue one generation task for all ``prompts`` of one goal and iteration: on the ``gpu`` queue for a model,
    on the ``cpu`` queue for a generator that needs none (``workers.launch.generation_queue``)."""
    from .app import GENERATE_TASK

    config = current_config(celery_app)
    check_broker(celery_app)
    _publish(celery_app, GENERATE_TASK, 0, 1, args=(run_id, goal_id, iteration, list(prompts), dict(generator)),
             queue=generation_queue(config, str(generator.get("generator", "procedural"))))


def wait_for_batches(*, run_id: int, goal_id: int, iteration: int, prompt_indices: Sequence[int],
                     timeout_s: float, poll_s: float = 0.25, celery_app: Celery = app,
                     engine: Engine | None = None,
                     resubmit: Callable[[list[int]], None] | None = None, queue: str | None = None,
                     watch: QueueWatch | None = None) -> list[BatchOutcome]:
    """Poll the store until every prompt's batch is stored (done or failed); raises WaitTimeoutError.

    With ``resubmit``, every ``reconcile_every_s`` the prompts whose generation message the broker lost on
    ``queue`` (default ``gpu``) are handed to it (sorted prompt indices) to be submitted again. ``watch`` says
    when no worker consumes the queue.
    """
    config = current_config(celery_app)
    queue = queue or config.gpu_queue
    engine = engine or get_engine(config)
    deadline = time.monotonic() + timeout_s
    every = config.reconcile_every_s if (resubmit is not None and not config.eager) else 0.0
    next_reconcile = time.monotonic() + every

    def stored() -> dict[int, BatchOutcome]:
        found: dict[int, BatchOutcome] = {}
        with session_scope(engine) as session:
            for i in prompt_indices:
                rec = writes.find_batch(session, run_id=run_id, goal_id=goal_id, iteration=iteration,
                                        prompt_index=i)
                if rec is not None:
                    row = session.get(GenerationBatch, rec.batch_id)
                    found[i] = BatchOutcome(i, rec.batch_id, rec.candidate_ids, row.status, row.error)
        return found

    found: dict[int, BatchOutcome] = {}
    while True:
        found = _read_store(stored, found)
        if every and len(found) < len(prompt_indices) and time.monotonic() >= next_reconcile:
            from .reconcile import log_resubmitted, lost_generation

            def reconcile() -> None:
                lost = sorted(lost_generation(run_id=run_id, goal_id=goal_id, iteration=iteration,
                                              celery_app=celery_app, queue=queue, engine=engine,
                                              missing_prompts=lambda: set(prompt_indices) - set(stored())))
                if lost:
                    resubmit(lost)
                    log_resubmitted(lost, f"generation prompts (run {run_id}, goal {goal_id}, iteration {iteration})")

            _reconcile_safely(reconcile)
            next_reconcile = time.monotonic() + every
        if len(found) == len(prompt_indices):
            return [found[i] for i in prompt_indices]
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"{len(prompt_indices) - len(found)} of {len(prompt_indices)} generation batches unfinished after "
                f"{timeout_s:g} s; are workers running on queue '{queue}'?", found)
        if watch is not None:
            watch.poll()
        time.sleep(poll_s)
