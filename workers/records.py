"""Evaluation results <-> store rows <-> training verdicts: the one place that knows how each maps to the other.

``columns(result)`` flattens an ``EvaluationResult`` (or its ``to_dict()``) into the ``evaluations`` columns that
``db.writes.record_evaluations`` stores; ``from_row(row)`` rebuilds the result from a stored row (an ORM
``Evaluation`` or a column dict). The store keeps the verdict, the metrics the queries and exports read, and the
whole hardware and goal-set results; it does not keep what only a debugger needs: the sandbox's output and
per-size errors, the barren-plateau check's per-parameter variances, samples and timing, the VQE's restart
energies, engine and check energy, the goal's name and width (the row points at its goal). ``from_row`` gives those
fields their defaults, so ``from_row(columns(r))`` is ``r`` for every result that carries only stored fields.

``verdict(result, code_sha256)`` is the reduced view training uses (``Verdict``); ``reusable_scores(row)`` the
scores of a stored row a renamed copy may borrow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from workers.evaluation import results as R

NO_CODE = "no-code"
"""Not an evaluation status: nothing could be extracted from a completion, so nothing was evaluated."""


# ---- result -> columns -------------------------------------------------------------------------------------------
def _payload(result: R.EvaluationResult | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(result, R.EvaluationResult):
        payload = result.to_dict()
        if result.vqe is not None and payload.get("vqe") is not None:  # repr=False: not in to_dict()
            payload["vqe"]["best_parameters"] = [float(x) for x in result.vqe.best_parameters]
        return payload
    return dict(result)


def columns(result: R.EvaluationResult | Mapping[str, Any]) -> dict[str, Any]:
    """The ``evaluations`` columns of a result (an ``EvaluationResult`` or its ``to_dict()``; unknown keys are
    ignored). The store checks the status and the errors and turns non-finite numbers into NULL."""
    payload = _payload(result)
    errors = payload.get("errors")
    cols: dict[str, Any] = {"status": payload.get("status"),
                            "errors": list(errors) if isinstance(errors, (list, tuple)) else errors or [],
                            "stage": payload.get("stage") or "", "seed": int(payload.get("seed") or 0),
                            "timings": dict(payload.get("timings") or {})}
    v = payload.get("verification") or {}
    cols.update(depth=v.get("depth"), num_parameters=v.get("num_parameters"), gate_counts=v.get("gate_counts"),
                num_two_qubit_gates=v.get("num_two_qubit_gates"))
    _bp_columns(cols, payload.get("bp") or {})
    _vqe_columns(cols, payload.get("vqe") or {})
    hw = payload.get("hardware") or {}
    cols.update(hw_backend=hw.get("backend"), hw_two_qubit_gates=hw.get("routed_two_qubit_gates"),
                hw_depth=hw.get("routed_depth"), hw_noisy_energy=hw.get("noisy_energy"),
                hw_noisy_stderr=hw.get("noisy_stderr"), hw_noisy_error=hw.get("noisy_error"),
                hw_shots=hw.get("shots") if hw else None, hw_details=hw or None)
    gs = payload.get("goal_set") or {}
    cols.update(set_mean_error=gs.get("mean_error"), set_extrapolation_qubits=gs.get("extrapolation_qubits"),
                set_extrapolation_error=gs.get("extrapolation_error"), set_details=gs or None)
    r = payload.get("reward") or {}
    cols.update(reward_version=r.get("version"), seed_reward=r.get("seed_reward"),
                shaped_reward=r.get("shaped_reward"), reward_components=r.get("components"),
                seed_reward_literal=r.get("seed_reward_literal"))
    cols["sandbox_isolation"] = (payload.get("sandbox") or {}).get("isolation") or None
    cols["circuit_fingerprint"] = payload.get("fingerprint") or payload.get("circuit_fingerprint") or None
    cols["reused_from"] = payload.get("reused_from") or None
    cols["reuse_key"] = payload.get("reuse_key") or None
    return cols


def _bp_columns(cols: dict[str, Any], bp: Mapping[str, Any]) -> None:
    cols.update(has_barren_plateau=bp.get("has_barren_plateau"), bp_method=bp.get("method"),
                bp_sizes=bp.get("sizes"), bp_variances=bp.get("variances"), bp_decay_rate=bp.get("decay_rate"),
                bp_decay_rate_stderr=bp.get("decay_rate_stderr"),
                bp_two_design_variance=bp.get("two_design_variance"), bp_reason=bp.get("reason"),
                bp_verdict=bp.get("verdict") or None)


def _vqe_columns(cols: dict[str, Any], q: Mapping[str, Any]) -> None:
    cols.update(vqe_energy=q.get("energy"), exact_energy=q.get("exact_energy"), vqe_error=q.get("error"),
                vqe_relative_error=q.get("relative_error"), chemical_accuracy=q.get("chemical_accuracy"),
                below_exact=q.get("below_exact"), vqe_evaluations=q.get("evaluations"),
                vqe_gradient_evaluations=q.get("gradient_evaluations"), vqe_seconds=q.get("seconds"),
                vqe_restarts=q.get("restarts"), vqe_seeds=q.get("seeds"),
                vqe_success_fraction=q.get("success_fraction"), vqe_optimizer=q.get("optimizer"),
                vqe_best_parameters=q.get("best_parameters"))


# ---- row -> result -----------------------------------------------------------------------------------------------
def _as_mapping(row: Any) -> Mapping[str, Any]:
    if isinstance(row, Mapping):
        return row
    return {c.name: getattr(row, c.name) for c in row.__table__.columns}


def _tuple(value: Any) -> tuple:
    return tuple(value or ())


def _build(cls: type, details: Mapping[str, Any]) -> Any:
    """A result dataclass from its ``to_dict()`` (lists back to tuples where the field is a tuple)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return cls(**{k: (tuple(v) if isinstance(v, list) and str(fields[k].type).startswith("tuple") else v)
                  for k, v in details.items() if k in fields})


def _verification(c: Mapping[str, Any]) -> R.VerificationResult | None:
    if c.get("depth") is None:
        return None
    failed = c.get("status") == R.STATUS_INVALID and c.get("stage") == "verify"
    return R.VerificationResult(ok=not failed, errors=_tuple(c.get("errors")) if failed else (), depth=c["depth"],
                                num_parameters=c.get("num_parameters") or 0, gate_counts=c.get("gate_counts") or {},
                                num_two_qubit_gates=c.get("num_two_qubit_gates") or 0)


def _bp(c: Mapping[str, Any]) -> R.BarrenPlateauResult | None:
    if c.get("has_barren_plateau") is None or c.get("bp_method") is None:
        return None
    return R.BarrenPlateauResult(
        has_barren_plateau=bool(c["has_barren_plateau"]), method=c["bp_method"], sizes=_tuple(c.get("bp_sizes")),
        variances=_tuple(c.get("bp_variances")), decay_rate=c.get("bp_decay_rate"),
        decay_rate_stderr=c.get("bp_decay_rate_stderr"), two_design_variance=c.get("bp_two_design_variance"),
        reason=c.get("bp_reason") or "", verdict=c.get("bp_verdict") or "")


def _vqe(c: Mapping[str, Any]) -> R.VQEResult | None:
    if c.get("vqe_energy") is None:
        return None
    return R.VQEResult(
        energy=c["vqe_energy"], exact_energy=c.get("exact_energy"), error=c.get("vqe_error"),
        relative_error=c.get("vqe_relative_error"), chemical_accuracy=c.get("chemical_accuracy"),
        below_exact=bool(c.get("below_exact")), evaluations=c.get("vqe_evaluations") or 0,
        gradient_evaluations=c.get("vqe_gradient_evaluations") or 0, seconds=c.get("vqe_seconds") or 0.0,
        restarts=c.get("vqe_restarts") or 0, seeds=_tuple(c.get("vqe_seeds")),
        success_fraction=c.get("vqe_success_fraction") or 0.0, optimizer=c.get("vqe_optimizer") or "",
        best_parameters=_tuple(c.get("vqe_best_parameters")))


def _reward(c: Mapping[str, Any]) -> R.RewardResult | None:
    if c.get("reward_version") is None:
        return None
    return R.RewardResult(version=c["reward_version"], seed_reward=c.get("seed_reward") or 0.0,
                          shaped_reward=c.get("shaped_reward") or 0.0, components=c.get("reward_components") or {},
                          seed_reward_literal=c.get("seed_reward_literal") or 0.0)


def _sandbox(c: Mapping[str, Any]) -> R.SandboxResult | None:
    if not c.get("sandbox_isolation"):
        return None
    stopped = c.get("stage") == "sandbox" and c.get("status") in (R.STATUS_ERROR, R.STATUS_TIMEOUT,
                                                                  R.STATUS_RESOURCE)
    return R.SandboxResult(status=c["status"] if stopped else "ok", isolation=c["sandbox_isolation"])


def from_row(row: Any) -> R.EvaluationResult:
    """The result stored in ``row`` (an ``Evaluation`` or a column dict); see the module docstring for what the
    store does not keep."""
    c = _as_mapping(row)
    return R.EvaluationResult(
        status=c["status"], errors=_tuple(c.get("errors")), stage=c.get("stage") or "",
        verification=_verification(c), bp=_bp(c), vqe=_vqe(c), reward=_reward(c),
        hardware=_build(R.HardwareResult, c["hw_details"]) if c.get("hw_details") else None,
        goal_set=_build(R.GoalSetResult, c["set_details"]) if c.get("set_details") else None,
        sandbox=_sandbox(c), scorer_version=c.get("scorer_version") or R.SCORER_VERSION,
        seed=c.get("seed") or 0, timings=dict(c.get("timings") or {}), fingerprint=c.get("circuit_fingerprint"),
        reused_from=c.get("reused_from"), reuse_key=c.get("reuse_key"))


def reusable_scores(row: Any) -> tuple[R.BarrenPlateauResult | None, R.VQEResult | None, str] | None:
    """(bp, vqe, source) a renamed copy may take from the stored valid ``row``, or None when the row was scored
    without VQE for a reason other than a barren plateau (the copy is then scored properly). The copy spent no
    time on VQE: its ``seconds`` is 0."""
    c = _as_mapping(row)
    stored = from_row(c)
    bp, vqe = stored.bp, stored.vqe
    if vqe is None and not (bp is not None and bp.has_barren_plateau):
        return None
    if vqe is not None:
        vqe = dataclasses.replace(vqe, seconds=0.0)
    return bp, vqe, f"evaluation {c['id']} (code {c['code_sha256'][:12]})"


# ---- result -> training verdict ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the cascade said about one completion, reduced to what training needs."""

    status: str
    """The evaluation's status (``results.STATUSES``), or ``no-code`` (``NO_CODE``) when nothing could be
    extracted; ``failed`` also when the cascade itself broke."""
    stage: str = ""
    errors: tuple[str, ...] = ()
    code_sha256: str | None = None
    built: bool = False
    """The sandbox ran the code and got a circuit back (the seed's "syntax validity": the code executes)."""
    verified: bool = False
    """The circuit passed verification (width, parameters, gates, depth)."""
    has_barren_plateau: bool | None = None
    """None when the check did not run (not verified, or switched off)."""
    vqe_error: float | None = None
    seed_reward: float = 0.0
    """max(0, 1 - eps), eps = error / (E_ref - E0) (workers/evaluation/rewards.py); 0 for anything not valid."""
    shaped_reward: float = 0.0
    """The shaped reward; 0 here for anything not valid (failed verification earns nothing in training)."""
    fingerprint: str | None = None

    def reward(self, kind: str) -> float:
        if self.status != R.STATUS_VALID:
            return 0.0
        return self.seed_reward if kind == "seed" else self.shaped_reward

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def verdict(result: R.EvaluationResult, code_sha256: str | None = None) -> Verdict:
    """The training view of a result. Every sandbox failure (and an unreadable circuit) stops at stage
    ``sandbox``: anything past it was built."""
    reward = result.reward
    return Verdict(
        status=result.status, stage=result.stage, errors=tuple(result.errors), code_sha256=code_sha256,
        built=result.stage != "sandbox", verified=bool(result.verification is not None and result.verification.ok),
        has_barren_plateau=result.bp.has_barren_plateau if result.bp is not None else None,
        vqe_error=result.vqe.error if result.vqe is not None else None,
        seed_reward=float(reward.seed_reward) if reward is not None else 0.0,
        shaped_reward=float(reward.shaped_reward) if reward is not None else 0.0, fingerprint=result.fingerprint)


def core_failure(exc: BaseException, *, stage: str, seed: int = 0) -> R.EvaluationResult:
    """The ``failed`` result of an evaluation whose core raised (a bug or a bad goal, not the candidate's verdict)."""
    return R.EvaluationResult(status=R.STATUS_FAILED, stage=stage, seed=seed, errors=(
        f"the evaluation core raised {type(exc).__name__}: {exc}; the candidate was not judged",))
