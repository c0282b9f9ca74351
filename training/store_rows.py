"""The store reads behind the exports: plain dict rows plus the SQL that produced them (for the export's meta
file).

Every read joins a candidate to its batch (prompt, run, model version), its goal, and the evaluation of its
code on that goal under one scorer version (``scorer_version=None``: the most recent evaluation of any
version).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, true
from sqlalchemy.orm import Session

from db.models import FINAL_STATUSES, Candidate, Evaluation, GenerationBatch, Goal, ModelVersion
from workers.evaluation.results import SCORER_VERSION
from workers.generation.prompts import PROMPT_PREFIX, PROMPT_SUFFIX


@dataclasses.dataclass(frozen=True)
class StoreFilters:
    """Which part of the store an export reads. Empty tuples mean "all"."""

    goals: tuple[str, ...] = ()
    """Goal names (``goals.name``) to keep."""
    runs: tuple[int, ...] = ()
    """Run ids to keep."""
    model_versions: tuple[str, ...] = ()
    """Model-version names (``model_versions.name``) or ids (as text) whose batches to keep."""
    scorer_version: str | None = SCORER_VERSION
    """Evaluations of this scorer version only (default: the current one); None takes each candidate's most
    recent
    evaluation of any version."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "goals": list(self.goals),
            "runs": list(self.runs),
            "model_versions": list(self.model_versions),
            "scorer_version": self.scorer_version,
        }


@dataclasses.dataclass(frozen=True)
class SFTQuality:
    """What counts as a completion worth imitating."""

    max_error: float = 0.05
    """Largest VQE energy error (energy - exact, in the goal's unit) kept; 0.05 is a seed reward of at least
    0.5."""
    allow_barren_plateau: bool = False
    """Keep candidates flagged (or not checked) for barren plateaus."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _batch_filters(stmt: Select, filters: StoreFilters) -> Select:
    if filters.goals:
        stmt = stmt.where(Goal.name.in_(filters.goals))
    if filters.runs:
        stmt = stmt.where(GenerationBatch.run_id.in_(filters.runs))
    if filters.model_versions:
        ids = [int(v) for v in filters.model_versions if v.isdigit()]
        names = [v for v in filters.model_versions if not v.isdigit()]
        stmt = stmt.where(or_(ModelVersion.name.in_(names), ModelVersion.id.in_(ids)))
    return stmt


def rendered_prompt():
    """Batches whose prompt is a real rendered prompt (the seed template's head and tail): the loop's baseline
    batches (prompt ``baselines``) and anything else written without asking a model are not training data."""
    return and_(
        GenerationBatch.prompt.startswith(PROMPT_PREFIX, autoescape=True),
        GenerationBatch.prompt.endswith(PROMPT_SUFFIX, autoescape=True),
    )


def _evaluation_join(filters: StoreFilters):
    if filters.scorer_version is not None:
        return and_(
            Evaluation.code_sha256 == Candidate.code_sha256,
            Evaluation.goal_id == GenerationBatch.goal_id,
            Evaluation.scorer_version == filters.scorer_version,
        )
    latest = (
        select(func.max(Evaluation.id))
        .where(Evaluation.code_sha256 == Candidate.code_sha256, Evaluation.goal_id == GenerationBatch.goal_id)
        .correlate(Candidate, GenerationBatch)
        .scalar_subquery()
    )
    return Evaluation.id == latest


_CANDIDATE_COLUMNS = (
    Candidate.id.label("candidate_id"),
    Candidate.code,
    Candidate.raw,
    Candidate.code_sha256,
    Candidate.temperature,
    Candidate.extraction_error,
    GenerationBatch.id.label("batch_id"),
    GenerationBatch.run_id,
    GenerationBatch.iteration,
    GenerationBatch.prompt_index,
    GenerationBatch.system_prompt,
    GenerationBatch.prompt,
    GenerationBatch.generator,
    Goal.id.label("goal_id"),
    Goal.name.label("goal"),
    Goal.spec.label("goal_spec"),
    Goal.spec_hash,
    Goal.num_qubits,
    Goal.exact_energy.label("goal_exact_energy"),
    Goal.max_depth,
    Goal.allowed_gates,
    ModelVersion.id.label("model_version_id"),
    ModelVersion.name.label("model_version"),
    ModelVersion.base_model,
    ModelVersion.adapter_sha256,
    Evaluation.id.label("evaluation_id"),
    Evaluation.status,
    Evaluation.stage,
    Evaluation.scorer_version,
    Evaluation.vqe_error,
    Evaluation.vqe_relative_error,
    Evaluation.vqe_energy,
    Evaluation.has_barren_plateau,
    Evaluation.depth,
    Evaluation.num_parameters,
    Evaluation.num_two_qubit_gates,
    Evaluation.circuit_fingerprint,
    Evaluation.seed_reward,
    Evaluation.shaped_reward,
    Evaluation.reward_version,
    Evaluation.reward_components,
    Evaluation.set_mean_error,
    Evaluation.set_extrapolation_error,
    Evaluation.hw_two_qubit_gates,
    Evaluation.hw_noisy_error,
)


def candidates_statement(filters: StoreFilters, *, with_uncoded: bool = False) -> Select:
    """Candidates with a final evaluation (and, with ``with_uncoded``, those whose completion held no
    code)."""
    stmt = (
        select(*_CANDIDATE_COLUMNS)
        .join(GenerationBatch, GenerationBatch.id == Candidate.batch_id)
        .join(Goal, Goal.id == GenerationBatch.goal_id)
        .outerjoin(ModelVersion, ModelVersion.id == GenerationBatch.model_version_id)
        .outerjoin(Evaluation, _evaluation_join(filters))
    )
    final = Evaluation.status.in_(FINAL_STATUSES)
    stmt = stmt.where(or_(final, Candidate.code.is_(None)) if with_uncoded else final)
    return _batch_filters(stmt, filters).order_by(Candidate.id)


def sft_statement(filters: StoreFilters, quality: SFTQuality, *, rendered_only: bool = True) -> Select:
    """Candidates whose code is valid, scored within ``max_error`` and (unless allowed) free of barren
    plateaus, answering a real rendered prompt (``rendered_only=False``: whatever their batch's prompt)."""
    stmt = candidates_statement(filters).where(
        rendered_prompt() if rendered_only else true(),
        Evaluation.status == "valid",
        Evaluation.vqe_error.is_not(None),
        Evaluation.vqe_error <= quality.max_error,
    )
    if not quality.allow_barren_plateau:
        stmt = stmt.where(Evaluation.has_barren_plateau.is_(False))
    return stmt


def prompts_statement(filters: StoreFilters) -> Select:
    """The distinct prompts the loop asked (batches that generated), with their goal."""
    distinct = (
        select(
            func.min(GenerationBatch.id).label("batch_id"),
            GenerationBatch.system_prompt,
            GenerationBatch.prompt,
            GenerationBatch.goal_id,
        )
        .join(Goal, Goal.id == GenerationBatch.goal_id)
        .outerjoin(ModelVersion, ModelVersion.id == GenerationBatch.model_version_id)
        .where(GenerationBatch.status == "done", rendered_prompt())
    )
    distinct = (
        _batch_filters(distinct, filters)
        .group_by(GenerationBatch.system_prompt, GenerationBatch.prompt, GenerationBatch.goal_id)
        .subquery()
    )
    # the goal's JSON columns join afterwards: PostgreSQL cannot group by a json column
    return (
        select(
            distinct.c.batch_id,
            distinct.c.system_prompt,
            distinct.c.prompt,
            Goal.id.label("goal_id"),
            Goal.name.label("goal"),
            Goal.spec.label("goal_spec"),
            Goal.spec_hash,
            Goal.exact_energy.label("goal_exact_energy"),
        )
        .join(Goal, Goal.id == distinct.c.goal_id)
        .order_by(distinct.c.batch_id)
    )


def goals_statement(names: tuple[str, ...]) -> Select:
    stmt = select(
        Goal.id.label("goal_id"),
        Goal.name.label("goal"),
        Goal.spec.label("goal_spec"),
        Goal.spec_hash,
        Goal.exact_energy.label("goal_exact_energy"),
    ).order_by(Goal.id)
    return stmt.where(Goal.name.in_(names)) if names else stmt


def fetch(session: Session, stmt: Select) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in session.execute(stmt)]


def sql_text(session: Session, stmt: Select) -> str:
    """The statement as SQL for the meta file (literal values inlined where the dialect can render them)."""
    dialect = session.get_bind().dialect
    try:
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except Exception:  # a value the dialect cannot inline: keep the placeholders
        return str(stmt.compile(dialect=dialect))


def count_by_status(session: Session, filters: StoreFilters) -> dict[str, int]:
    """Candidates per evaluation status (``no-code`` for completions without code) under ``filters``."""
    stmt = candidates_statement(filters, with_uncoded=True).subquery()
    rows = session.execute(
        select(stmt.c.status, stmt.c.code_sha256.is_(None), func.count()).group_by(
            stmt.c.status, stmt.c.code_sha256.is_(None)
        )
    ).all()
    out: dict[str, int] = {}
    for status, uncoded, n in rows:
        key = "no-code" if uncoded else str(status)
        out[key] = out.get(key, 0) + int(n)
    return out
