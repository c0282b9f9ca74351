"""What the discovery loop reads back from the store: memory records (for prompts) and report points (for plots).

A candidate finds its evaluation through (code sha256, goal of its batch, scorer version); these queries do that
join once per goal and keep the first candidate that produced each code (its iteration and batch generator).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import FINAL_STATUSES, Candidate, Evaluation, GenerationBatch
from db.models import Goal as GoalRow
from workers.evaluation.goals import Goal
from workers.evaluation.results import SCORER_VERSION

from .memory import MemoryRecord
from .report import ReportPoint

BASELINE_GENERATOR = "baseline"
RECENT_LIMIT = 200
BEST_LIMIT = 20


def related_goal_ids(session: Session, goal: Goal, goal_id: int) -> dict[int, str]:
    """This goal and the stored goals of the same lattice family and parameters at other sizes: id -> name."""
    out = {goal_id: goal.name}
    if not goal.is_lattice:
        return out
    rows = session.execute(select(GoalRow.id, GoalRow.name, GoalRow.spec).where(GoalRow.kind == "lattice")).all()
    for gid, name, spec in rows:
        if spec.get("family") == goal.family and spec.get("params") == goal.params and \
                spec.get("allowed_gates") == list(goal.allowed_gates):
            out[gid] = name
    return out


def _first_candidates(session: Session, goal_ids: Sequence[int], run_id: int | None = None):
    """Per (code sha256, goal id): the first candidate's id, code, iteration and generator (optionally one run)."""
    first = (select(func.min(Candidate.id).label("cid"))
             .join(GenerationBatch, GenerationBatch.id == Candidate.batch_id)
             .where(GenerationBatch.goal_id.in_(goal_ids), Candidate.code_sha256.is_not(None)))
    if run_id is not None:
        first = first.where(GenerationBatch.run_id == run_id)
    first = first.group_by(Candidate.code_sha256, GenerationBatch.goal_id).subquery()
    rows = session.execute(
        select(Candidate.code_sha256, GenerationBatch.goal_id, Candidate.code, GenerationBatch.iteration,
               GenerationBatch.generator, Candidate.raw)
        .join(GenerationBatch, GenerationBatch.id == Candidate.batch_id)
        .where(Candidate.id.in_(select(first.c.cid)))).all()
    return {(r[0], r[1]): r for r in rows}


def memory_records(session: Session, goal: Goal, goal_id: int) -> list[MemoryRecord]:
    """Evaluated candidates of this goal and its neighbouring sizes: the best and the most recent."""
    names = related_goal_ids(session, goal, goal_id)
    ids = list(names)
    base = select(Evaluation).where(Evaluation.goal_id.in_(ids), Evaluation.scorer_version == SCORER_VERSION,
                                    Evaluation.status.in_(FINAL_STATUSES))
    best = session.execute(base.where(Evaluation.status == "valid", Evaluation.vqe_relative_error.is_not(None))
                           .order_by(Evaluation.vqe_relative_error).limit(BEST_LIMIT)).scalars().all()
    recent = session.execute(base.order_by(Evaluation.id.desc()).limit(RECENT_LIMIT)).scalars().all()
    rows = {ev.id: ev for ev in [*best, *recent]}
    codes = _first_candidates(session, ids)
    records = []
    for ev in rows.values():
        first = codes.get((ev.code_sha256, ev.goal_id))
        if first is None or first[4] == BASELINE_GENERATOR:
            continue  # baselines are shown beside the discoveries, not fed back as the model's own work
        gate_counts = ev.gate_counts or {}
        records.append(MemoryRecord(
            goal=names[ev.goal_id], num_qubits=goal.num_qubits, status=ev.status, code=first[2] or "",
            code_sha256=ev.code_sha256, error=ev.vqe_error, relative_error=ev.vqe_relative_error, depth=ev.depth,
            num_parameters=ev.num_parameters, two_qubit_gates=ev.num_two_qubit_gates, gate_counts=gate_counts,
            decay_rate=ev.bp_decay_rate, has_barren_plateau=ev.has_barren_plateau, errors=tuple(ev.errors or ()),
            iteration=first[3], fingerprint=ev.circuit_fingerprint))
    return records


def baseline_label(code: str) -> str:
    first = (code or "").splitlines()[0] if code else ""
    return first.removeprefix("# baseline:").strip() if first.startswith("# baseline:") else "baseline"


def report_points(session: Session, run_id: int, goal_id: int) -> list[ReportPoint]:
    """Every evaluated code of one goal in one run (baselines marked), for the plots and tables."""
    codes = _first_candidates(session, [goal_id], run_id=run_id)
    if not codes:
        return []
    shas = list({sha for sha, _ in codes})
    evs = []
    for i in range(0, len(shas), 500):
        evs += session.execute(select(Evaluation).where(
            Evaluation.goal_id == goal_id, Evaluation.scorer_version == SCORER_VERSION,
            Evaluation.code_sha256.in_(shas[i:i + 500]))).scalars().all()
    points = []
    for ev in evs:
        first = codes[(ev.code_sha256, goal_id)]
        baseline = first[4] == BASELINE_GENERATOR
        label = baseline_label(first[2]) if baseline else f"it{first[3] + 1}-{ev.code_sha256[:8]}"
        points.append(ReportPoint(
            label=label, iteration=max(first[3], 0), error=ev.vqe_error if ev.status == "valid" else None,
            two_qubit_gates=ev.num_two_qubit_gates or 0, depth=ev.depth or 0, num_parameters=ev.num_parameters or 0,
            status=ev.status, code=first[2] or "", bp_sizes=tuple(ev.bp_sizes or ()),
            bp_variances=tuple(ev.bp_variances or ()), decay_rate=ev.bp_decay_rate,
            has_barren_plateau=ev.has_barren_plateau, baseline=baseline,
            routed_two_qubit_gates=ev.hw_two_qubit_gates, noisy_error=ev.hw_noisy_error,
            noisy_stderr=ev.hw_noisy_stderr, mean_error=ev.set_mean_error,
            extrapolation_error=ev.set_extrapolation_error))
    return points
