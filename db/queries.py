"""The reads the queue, the CLI and researchers need: a candidate's work item, evaluation states, an earlier
evaluation whose scores a renamed copy may reuse, the best candidates of a goal, and a read-only runner for
arbitrary SELECTs."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from .errors import ReadOnlyQueryError, StoreError
from .models import Candidate, Evaluation, GenerationBatch, Goal, ModelVersion


@dataclasses.dataclass(frozen=True)
class CandidateWork:
    """What a worker needs to evaluate one candidate."""

    candidate_id: int
    code: str | None
    code_sha256: str | None
    goal_id: int
    goal_spec: dict


def candidate_work(session: Session, candidate_id: int) -> CandidateWork:
    row = session.execute(
        select(Candidate.id, Candidate.code, Candidate.code_sha256, Goal.id, Goal.spec)
        .join(GenerationBatch, GenerationBatch.id == Candidate.batch_id)
        .join(Goal, Goal.id == GenerationBatch.goal_id)
        .where(Candidate.id == candidate_id)).one_or_none()
    if row is None:
        raise StoreError(f"no candidate with id {candidate_id} in the store")
    return CandidateWork(*row)


def candidates_work(session: Session, candidate_ids: Sequence[int]) -> list[CandidateWork]:
    """The work items of several candidates, in the order given; unknown ids are refused."""
    rows = session.execute(
        select(Candidate.id, Candidate.code, Candidate.code_sha256, Goal.id, Goal.spec)
        .join(GenerationBatch, GenerationBatch.id == Candidate.batch_id)
        .join(Goal, Goal.id == GenerationBatch.goal_id)
        .where(Candidate.id.in_(list(candidate_ids)))).all()
    by_id = {r[0]: CandidateWork(*r) for r in rows}
    missing = [c for c in candidate_ids if c not in by_id]
    if missing:
        raise StoreError(f"no candidate(s) with id {missing[:10]} in the store")
    return [by_id[c] for c in candidate_ids]


def evaluation_states(session: Session, keys: Sequence[tuple[str, int, str]]) -> dict[tuple[str, int, str], str]:
    """Status of each (code_sha256, goal_id, scorer_version) key that has a row (missing keys are absent)."""
    out: dict[tuple[str, int, str], str] = {}
    keys = list(keys)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        shas = {k[0] for k in chunk}
        rows = session.execute(select(Evaluation.code_sha256, Evaluation.goal_id, Evaluation.scorer_version,
                                      Evaluation.status).where(Evaluation.code_sha256.in_(shas))).all()
        wanted = set(chunk)
        for sha, goal_id, version, status in rows:
            if (sha, goal_id, version) in wanted:
                out[(sha, goal_id, version)] = status
    return out


def reusable_evaluation(session: Session, *, reuse_key: str, goal_id: int, scorer_version: str,
                        code_sha256: str) -> Evaluation | None:
    """The first valid, freshly scored evaluation of the same goal and scorer version under ``reuse_key`` (the
    same circuits at every scored size), of other code than ``code_sha256``; None when there is none."""
    return session.execute(
        select(Evaluation).where(Evaluation.reuse_key == reuse_key, Evaluation.goal_id == goal_id,
                                 Evaluation.scorer_version == scorer_version, Evaluation.status == "valid",
                                 Evaluation.reused_from.is_(None), Evaluation.code_sha256 != code_sha256)
        .order_by(Evaluation.id).limit(1)).scalar_one_or_none()


def best_evaluations(session: Session, goal_name: str, *, top: int = 10,
                     scorer_version: str | None = None) -> list[dict[str, Any]]:
    """The ``top`` valid evaluations of every goal called ``goal_name``, lowest energy error first, each with
    the first candidate that produced its code (temperature, model version, run)."""
    if top < 1:
        raise StoreError(f"--top must be at least 1, got {top}")
    goal_ids = session.execute(select(Goal.id).where(Goal.name == goal_name)).scalars().all()
    if not goal_ids:
        known = session.execute(select(Goal.name).distinct().order_by(Goal.name).limit(50)).scalars().all()
        raise StoreError(f"no goal named '{goal_name}' in the store; goals with results: "
                         f"{', '.join(known) if known else 'none yet'}")
    best: list[Evaluation] = []
    for goal_id in goal_ids:  # one ordered index scan per goal row (a join would sort every valid row)
        stmt = (select(Evaluation).where(Evaluation.goal_id == goal_id, Evaluation.status == "valid")
                .order_by(Evaluation.vqe_error, Evaluation.id).limit(top))
        if scorer_version:
            stmt = stmt.where(Evaluation.scorer_version == scorer_version)
        best += session.execute(stmt).scalars().all()
    best.sort(key=lambda ev: (ev.vqe_error is None, ev.vqe_error or 0.0, ev.id))
    out = []
    for rank, ev in enumerate(best[:top], start=1):
        first = session.execute(
            select(Candidate.id, Candidate.temperature, GenerationBatch.run_id, GenerationBatch.iteration,
                   ModelVersion.name, Candidate.code)
            .join(GenerationBatch, GenerationBatch.id == Candidate.batch_id)
            .outerjoin(ModelVersion, ModelVersion.id == GenerationBatch.model_version_id)
            .where(Candidate.code_sha256 == ev.code_sha256, GenerationBatch.goal_id == ev.goal_id)
            .order_by(Candidate.id).limit(1)).one_or_none()
        seen = session.execute(select(func.count(Candidate.id)).join(GenerationBatch)
                               .where(Candidate.code_sha256 == ev.code_sha256,
                                      GenerationBatch.goal_id == ev.goal_id)).scalar_one()
        row = {"rank": rank, **ev.summary(), "goal": goal_name, "times_generated": seen,
               "first_candidate_id": None, "temperature": None, "run_id": None, "iteration": None,
               "model_version": None, "code": None}
        if first is not None:
            row.update(first_candidate_id=first[0], temperature=first[1], run_id=first[2], iteration=first[3],
                       model_version=first[4], code=first[5])
        out.append(row)
    return out


# ---- read-only SQL ------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|"(?:[^"]|"")*"|;|[^'";\-/]+|.""", re.DOTALL)
_READ_KEYWORDS = ("select", "with", "values")


def check_select(sql: str) -> str:
    """The statement without a trailing ';' if it is exactly one SELECT (or WITH ... SELECT); else refuse."""
    if not isinstance(sql, str) or not sql.strip():
        raise ReadOnlyQueryError("empty query; give one SELECT statement, e.g. \"SELECT * FROM best_candidates\"")
    significant: list[str] = []
    statements = 1
    for tok in _TOKEN.findall(sql):
        if tok.startswith(("--", "/*")):
            continue
        if tok == ";":
            statements += 1
            continue
        if tok.strip() and statements > 1:
            raise ReadOnlyQueryError("only one statement may be given; remove everything after the first ';'")
        significant.append(tok)
    words = "".join(significant).strip().split(None, 1)
    first = words[0].lower().rstrip("(") if words else ""
    if first not in _READ_KEYWORDS:
        raise ReadOnlyQueryError(f"`qmind sql` runs read-only SELECT queries; this statement starts with "
                                 f"'{words[0] if words else ''}'. Use SELECT (or WITH ... SELECT)")
    return sql.strip().rstrip(";").strip()


@dataclasses.dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


def run_read_only(engine: Engine, sql: str, *, max_rows: int = 10_000) -> QueryResult:
    """Run one SELECT in a read-only transaction (``engine`` should come from ``make_engine(read_only=True)``)."""
    statement = check_select(sql)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION READ ONLY"))
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
        result = conn.exec_driver_sql(statement.replace("%", "%%")
                                      if conn.dialect.name == "postgresql" else statement)
        columns = list(result.keys())
        rows = [list(r) for r in result.fetchmany(max_rows + 1)] if result.returns_rows else []
        conn.rollback()
    return QueryResult(columns, rows[:max_rows], truncated=len(rows) > max_rows)
