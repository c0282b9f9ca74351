"""Idempotent writes keyed on natural keys (INSERT ... ON CONFLICT on SQLite and PostgreSQL).

Every function works inside the caller's transaction (``session_scope``); the caller commits once per task
result, before the task is acknowledged. Nothing here imports quantum-mind code: results arrive as plain dicts
(evaluations as their columns, ``workers.records.columns``; batches as ``GenerationBatch.to_dict()``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .base import utcnow
from .errors import StoreError
from .models import (
    FINAL_STATUSES,
    STATUS_FAILED,
    STATUS_PENDING,
    Candidate,
    Evaluation,
    GenerationBatch,
    Goal,
    ModelVersion,
    Run,
)
from .session import json_dumps

RUN_STATUSES = ("running", "completed", "failed", "stopped")


def code_sha256(code: str) -> str:
    """The code hash the store keys evaluations on (sha256 of the UTF-8 text, exactly as extracted)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class EvaluationKey:
    """Natural key of an evaluation: the same code is evaluated once per goal and scorer version."""

    code_sha256: str
    goal_id: int
    scorer_version: str

    def as_dict(self) -> dict[str, Any]:
        return {"code_sha256": self.code_sha256, "goal_id": self.goal_id, "scorer_version": self.scorer_version}


_KEY_COLUMNS = ("code_sha256", "goal_id", "scorer_version")


def _dialect(session: Session) -> str:
    name = session.get_bind().dialect.name
    if name not in ("postgresql", "sqlite"):
        raise StoreError(f"unsupported database dialect '{name}'; expected sqlite or postgresql")
    return name


def _insert(session: Session, model: type):
    return (postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert)(model)


# Upserts on the hot path are built once per dialect (building one costs about as much as running it).
_STATEMENTS: dict[tuple, Any] = {}


def _cached(session: Session, name: str, build, *extra: Any):
    key = (name, _dialect(session), *extra)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = build(_insert(session, Evaluation))
    return stmt


# ---- goals, model versions, runs --------------------------------------------------------------------------------
def upsert_goal(session: Session, spec: dict[str, Any], *, spec_hash: str, exact_energy: float) -> int:
    """Store a goal spec (``Goal.to_spec()``) once per ``spec_hash``; returns the goal id."""
    for field in ("name", "num_qubits", "max_depth", "allowed_gates"):
        if field not in spec:
            raise StoreError(f"goal spec lacks '{field}'; expected the output of Goal.to_spec()")
    values = {"spec_hash": spec_hash, "name": spec["name"], "kind": spec.get("kind") or "pauli",
                  "num_qubits": int(spec["num_qubits"]), "exact_energy": float(exact_energy),
                  "max_depth": int(spec["max_depth"]), "allowed_gates": list(spec["allowed_gates"]), "spec": spec,
                  "provenance": dict(spec.get("provenance") or {}), "created_at": utcnow()}
    session.execute(_insert(session, Goal).values(**values).on_conflict_do_nothing(index_elements=["spec_hash"]))
    return session.execute(select(Goal.id).where(Goal.spec_hash == spec_hash)).scalar_one()


def upsert_model_version(session: Session, *, name: str, base_model: str, adapter_sha256: str = "",
                         adapter_path: str | None = None, training_config: dict | None = None,
                         metrics: dict | None = None) -> int:
    """Store a model version once per (base model, adapter hash); metrics are merged into an existing row."""
    values = {"name": name, "base_model": base_model, "adapter_sha256": adapter_sha256 or "", "adapter_path": adapter_path,
                  "training_config": training_config or {}, "metrics": metrics or {}, "created_at": utcnow()}
    stmt = _insert(session, ModelVersion).values(**values)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["base_model", "adapter_sha256"]))
    row = session.execute(select(ModelVersion).where(ModelVersion.base_model == base_model,
                                                     ModelVersion.adapter_sha256 == (adapter_sha256 or ""))
                          ).scalar_one()
    if metrics and any(row.metrics.get(k) != v for k, v in metrics.items()):
        row.metrics = {**row.metrics, **metrics}
    return row.id


def create_run(session: Session, *, goal_names: Sequence[str], generator: str, settings: dict | None = None,
               model_version_id: int | None = None, seed: int = 0, host: str | None = None) -> int:
    run = Run(goal_names=list(goal_names), generator=generator, settings=settings or {},
              model_version_id=model_version_id, seed=seed, host=host, status="running", iteration=0)
    session.add(run)
    session.flush()
    return run.id


def update_run(session: Session, run_id: int, *, iteration: int | None = None, status: str | None = None,
               error: str | None = None) -> None:
    """Record progress; a status other than ``running`` also stamps ``ended_at``."""
    values: dict[str, Any] = {}
    if iteration is not None:
        values["iteration"] = iteration
    if status is not None:
        if status not in RUN_STATUSES:
            raise StoreError(f"run status must be one of {RUN_STATUSES}, got {status!r}")
        values["status"] = status
        values["ended_at"] = None if status == "running" else utcnow()
    if error is not None:
        values["error"] = error
    if values and session.execute(update(Run).where(Run.id == run_id).values(**values)).rowcount != 1:
        raise StoreError(f"no run with id {run_id}")


# ---- generation ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BatchRecord:
    batch_id: int
    candidate_ids: tuple[int, ...]
    created: bool
    """False when the batch already existed (a redelivered task): nothing was written."""


def find_batch(session: Session, *, run_id: int, goal_id: int, iteration: int,
               prompt_index: int) -> BatchRecord | None:
    batch_id = session.execute(select(GenerationBatch.id).where(
        GenerationBatch.run_id == run_id, GenerationBatch.goal_id == goal_id,
        GenerationBatch.iteration == iteration, GenerationBatch.prompt_index == prompt_index)).scalar_one_or_none()
    if batch_id is None:
        return None
    ids = session.execute(select(Candidate.id).where(Candidate.batch_id == batch_id)
                          .order_by(Candidate.candidate_index)).scalars().all()
    return BatchRecord(batch_id, tuple(ids), created=False)


def record_batch(session: Session, *, run_id: int, goal_id: int, iteration: int, prompt_index: int,
                 batch: dict[str, Any], model_version_id: int | None = None, seed: int = 0,
                 worker_host: str | None = None, error: str | None = None) -> BatchRecord:
    """Store one prompt's batch and its candidates (``GenerationBatch.to_dict()``), once per natural key.

    With ``error`` the batch is stored as ``failed`` and its candidates (if any) are ignored.
    """
    key = {"run_id": run_id, "goal_id": goal_id, "iteration": iteration, "prompt_index": prompt_index}
    values = dict(key, model_version_id=model_version_id, generator=str(batch.get("generator") or "unknown"),
                  system_prompt=batch.get("system_prompt") or "", prompt=batch.get("prompt") or "",
                  memory_context=batch.get("memory_context") or "", settings=dict(batch.get("settings") or {}),
                  seed=seed, prompt_tokens=int(batch.get("prompt_tokens") or 0),
                  completion_tokens=int(batch.get("completion_tokens") or 0),
                  seconds=float(batch.get("seconds") or 0.0), status="failed" if error else "done", error=error,
                  worker_host=worker_host, created_at=utcnow())
    stmt = _insert(session, GenerationBatch).values(**values).on_conflict_do_nothing(
        index_elements=list(key)).returning(GenerationBatch.id)
    batch_id = session.execute(stmt).scalar_one_or_none()
    if batch_id is None:
        existing = find_batch(session, **key)
        assert existing is not None
        return existing
    rows = []
    for i, cand in enumerate([] if error else batch.get("candidates") or []):
        code = cand.get("code")
        rows.append({"batch_id": batch_id, "candidate_index": i, "temperature": float(cand["temperature"]),
                         "raw": cand.get("raw") or "", "code": code, "code_sha256": code_sha256(code) if code else None,
                         "extraction_error": cand.get("extraction_error"), "tokens": int(cand.get("tokens") or 0),
                         "seed": cand.get("seed"), "created_at": utcnow()})
    ids: list[int] = []
    if rows:
        stmt = _insert(session, Candidate).on_conflict_do_nothing(index_elements=["batch_id", "candidate_index"])
        session.connection().execute(stmt, rows)
        ids = list(session.execute(select(Candidate.id).where(Candidate.batch_id == batch_id)
                                   .order_by(Candidate.candidate_index)).scalars())
    return BatchRecord(batch_id, tuple(ids), created=True)


# ---- evaluations --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Attempt:
    """What ``begin_attempt`` decided."""

    evaluation_id: int
    attempts: int
    status: str
    proceed: bool
    """True: evaluate now. False: the evaluation is already final (possibly just marked ``failed``)."""


def _key_filter(key: EvaluationKey):
    return (Evaluation.code_sha256 == key.code_sha256, Evaluation.goal_id == key.goal_id,
            Evaluation.scorer_version == key.scorer_version)


def begin_attempt(session: Session, key: EvaluationKey, *, max_attempts: int, retries: int = 0,
                  worker_host: str | None = None, seed: int = 0) -> Attempt:
    """Create the evaluation row if needed and count one more attempt; the caller commits before evaluating.

    ``retries`` is how many times the queue retried this task after a transient error: those attempts ended
    cleanly. Any other unfinished attempt died with its worker (killed, or past the hard time limit); after
    ``max_attempts`` of those the evaluation is marked ``failed`` and not started again.
    """
    now = utcnow()
    stmt = _cached(session, "begin_attempt", lambda ins: ins.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS),
        set_={"attempts": Evaluation.attempts + 1, "worker_host": ins.excluded.worker_host,
              "updated_at": ins.excluded.updated_at},
        where=Evaluation.status == STATUS_PENDING).returning(Evaluation.id, Evaluation.attempts))
    params = dict(key.as_dict(), status=STATUS_PENDING, errors=[], stage="", seed=seed, timings={}, attempts=1,
                  worker_host=worker_host, created_at=now, updated_at=now)
    row = session.connection().execute(stmt, params).one_or_none()  # create the row, or count one more attempt
    if row is None:
        ev_id, status, attempts = session.execute(select(Evaluation.id, Evaluation.status, Evaluation.attempts)
                                                  .where(*_key_filter(key))).one()
        return Attempt(ev_id, attempts, status, proceed=False)
    ev_id, attempts = row
    died = attempts - 1 - retries
    if died >= max_attempts:
        message = (f"gave up after {died} attempts that never finished: the candidate killed its worker or ran "
                   f"past the hard time limit every time (limit: {max_attempts} attempts)")
        session.execute(update(Evaluation).where(Evaluation.id == ev_id).values(
            status=STATUS_FAILED, errors=[message], stage="queue", finished_at=now, updated_at=now))
        return Attempt(ev_id, attempts, STATUS_FAILED, proceed=False)
    return Attempt(ev_id, attempts, STATUS_PENDING, proceed=True)


_STORE_SET = {"id", *_KEY_COLUMNS, "worker_host", "attempts", "created_at", "updated_at", "finished_at"}
_VERDICT_COLUMNS = tuple(c.name for c in Evaluation.__table__.columns if c.name not in _STORE_SET)
_NOT_NULL = {"errors": [], "stage": "", "seed": 0, "timings": {}}


def checked_columns(cols: dict[str, Any]) -> dict[str, Any]:
    """Every verdict column of an evaluation from ``cols`` (``workers.records.columns``; missing ones NULL),
    checked: a final status, a list of messages, no unknown column; non-finite numbers become NULL (inside JSON
    values: ``json_dumps``)."""
    status = cols.get("status")
    if status not in FINAL_STATUSES:
        raise StoreError(f"evaluation status must be one of {FINAL_STATUSES}, got {status!r}")
    errors = cols.get("errors") or []
    if isinstance(errors, str) or not isinstance(errors, (list, tuple)):
        raise StoreError(f"evaluation 'errors' must be a list of messages, got {errors!r}")
    unknown = sorted(set(cols) - set(_VERDICT_COLUMNS))
    if unknown:
        raise StoreError(f"unknown evaluation columns {unknown}; expected the output of workers.records.columns")
    out = {name: cols.get(name) for name in _VERDICT_COLUMNS}
    for name, value in out.items():
        if value is None and name in _NOT_NULL:
            out[name] = _NOT_NULL[name]
        elif isinstance(value, float) and not math.isfinite(value):
            out[name] = None
    out["errors"] = [str(e) for e in errors]
    return out


#: From this many rows on, PostgreSQL ingests them as one JSON document expanded by the server.
BULK_THRESHOLD = 64


def record_evaluations(session: Session, items: Iterable[tuple[EvaluationKey, dict[str, Any]]], *,
                       worker_host: str | None = None) -> int:
    """Store final verdicts, each as its column dict (``workers.records.columns``); the first final verdict per
    key wins (later writes of the same key change nothing).

    Rows that do not exist yet are created (bulk ingest). Returns the number of distinct keys written.
    """
    now = utcnow()
    rows = []
    seen: set[EvaluationKey] = set()
    for key, given in items:
        cols = checked_columns(given)
        if key in seen:  # one statement may not touch a row twice; the first verdict wins anyway
            continue
        seen.add(key)
        cols.update(code_sha256=key.code_sha256, goal_id=key.goal_id, scorer_version=key.scorer_version)
        rows.append(cols)
    if not rows:
        return 0
    # the same for every row of this call
    constants = {"worker_host": worker_host, "attempts": 0, "created_at": now, "updated_at": now, "finished_at": now}
    keep = {*_KEY_COLUMNS, "attempts", "created_at"}
    if worker_host is None:
        keep.add("worker_host")  # keep the host begin_attempt recorded
    updated = [c for c in [*rows[0], *constants] if c not in keep]
    if session.get_bind().dialect.name == "postgresql" and len(rows) >= BULK_THRESHOLD:
        _bulk_upsert(session, rows, constants, updated)
        return len(rows)
    for row in rows:
        row.update(constants)
    stmt = _cached(session, "record_evaluations", lambda ins: ins.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS), set_={c: ins.excluded[c] for c in updated},
        where=Evaluation.status == STATUS_PENDING), tuple(updated))
    session.connection().execute(stmt, rows)  # Core executemany (the ORM bulk path splits rows into groups)
    return len(rows)


def _bulk_upsert(session: Session, rows: list[dict[str, Any]], constants: dict[str, Any],
                 updated: list[str]) -> None:
    """PostgreSQL bulk path with the same semantics: the rows as one JSON document (nulls left out, constants
    sent once), expanded by the server (``json_populate_recordset``) into one upsert."""
    columns = list(rows[0])
    sparse = [{k: v for k, v in row.items() if v is not None} for row in rows]
    document = json_dumps(sparse, separators=(",", ":"))
    names = ", ".join([*columns, *constants])
    values = ", ".join([*columns, *(f"%({c})s" for c in constants)])
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
    session.connection().exec_driver_sql(
        f"INSERT INTO evaluations ({names}) SELECT {values} "
        f"FROM json_populate_recordset(NULL::evaluations, %(document)s::json) "
        f"ON CONFLICT ({', '.join(_KEY_COLUMNS)}) DO UPDATE SET {assignments} "
        f"WHERE evaluations.status = '{STATUS_PENDING}'", {"document": document, **constants})


def record_evaluation(session: Session, key: EvaluationKey, cols: dict[str, Any], *,
                      worker_host: str | None = None) -> int:
    """Store one verdict's columns (see ``record_evaluations``); returns the evaluation id."""
    record_evaluations(session, [(key, cols)], worker_host=worker_host)
    return session.execute(select(Evaluation.id).where(*_key_filter(key))).scalar_one()


def set_circuit_fingerprint(session: Session, evaluation_id: int, fingerprint: str) -> None:
    """Fill the canonical circuit hash of an evaluation (the discovery loop computes it)."""
    if session.execute(update(Evaluation).where(Evaluation.id == evaluation_id).values(
            circuit_fingerprint=fingerprint, updated_at=utcnow())).rowcount != 1:
        raise StoreError(f"no evaluation with id {evaluation_id}")
