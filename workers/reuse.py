"""Re-use the scores of an earlier evaluation of the same circuit (a renamed copy): store lookup -> results.

The evaluation task hands ``lookup_for(engine, goal_id, code_sha256)`` to the cascade; after the cheap stages
(sandbox, verification, fingerprint) the cascade asks it for a *valid* evaluation of the same goal and scorer
version with the same reuse key (``fingerprint.reuse_key``: the structural fingerprints of the circuits at every
scored size, exact, so neither a one-point numerical match nor a different extra-size circuit can borrow scores),
and copies its barren-plateau and VQE metrics instead of recomputing them. Only the expensive stages are skipped; the copy is marked with ``reused_from``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, select

from db.models import Evaluation
from db.session import session_scope
from workers.evaluation import results as R


def _bp(row: Evaluation) -> R.BarrenPlateauResult | None:
    if row.has_barren_plateau is None or row.bp_method is None:
        return None
    return R.BarrenPlateauResult(
        has_barren_plateau=bool(row.has_barren_plateau), method=row.bp_method, sizes=tuple(row.bp_sizes or ()),
        variances=tuple(row.bp_variances or ()), decay_rate=row.bp_decay_rate,
        decay_rate_stderr=row.bp_decay_rate_stderr, two_design_variance=row.bp_two_design_variance,
        reason=row.bp_reason or "")


def _vqe(row: Evaluation) -> R.VQEResult | None:
    if row.vqe_energy is None:
        return None
    return R.VQEResult(
        energy=row.vqe_energy, exact_energy=row.exact_energy, error=row.vqe_error,
        relative_error=row.vqe_relative_error, chemical_accuracy=row.chemical_accuracy,
        below_exact=bool(row.below_exact), evaluations=row.vqe_evaluations or 0,
        gradient_evaluations=row.vqe_gradient_evaluations or 0, seconds=0.0, restarts=row.vqe_restarts or 0,
        seeds=tuple(row.vqe_seeds or ()), success_fraction=row.vqe_success_fraction or 0.0,
        optimizer=row.vqe_optimizer or "", best_parameters=tuple(row.vqe_best_parameters or ()))


def lookup_for(engine: Engine, goal_id: int, code_sha256: str,
               scorer_version: str = R.SCORER_VERSION) -> Callable[[str], tuple | None]:
    """A ``reuse`` callable for ``evaluate_code``: reuse key -> (bp, vqe, source key) or None."""

    def reuse(key: str) -> tuple | None:
        with session_scope(engine) as session:
            row = session.execute(
                select(Evaluation).where(Evaluation.reuse_key == key,
                                         Evaluation.goal_id == goal_id, Evaluation.scorer_version == scorer_version,
                                         Evaluation.status == R.STATUS_VALID, Evaluation.reused_from.is_(None),
                                         Evaluation.code_sha256 != code_sha256)
                .order_by(Evaluation.id).limit(1)).scalar_one_or_none()
            if row is None:
                return None
            bp, vqe = _bp(row), _vqe(row)
            if vqe is None and not (bp is not None and bp.has_barren_plateau):
                return None  # scored without VQE for some other reason: score this one properly
            return bp, vqe, f"evaluation {row.id} (code {row.code_sha256[:12]})"

    return reuse
