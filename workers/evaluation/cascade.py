"""One candidate's evaluation: sandbox -> verify -> barren-plateau check -> VQE (every member of a goal set:
``transfer.py``) -> [hardware] -> rewards.

Cheap stages first; each stage stops a candidate that fails it. The candidate's code runs only inside the sandbox,
which hands back serialised circuits; everything after that runs here, in the trusted process, on the deserialised
circuit, so a candidate can never touch the scorer.

Two halves so a caller can skip the expensive part for a circuit it has already scored (``reusable``,
``reuse_scores``): ``prepare`` (sandbox + verification + fingerprint, about a second) and ``score`` (barren-plateau
check + VQE, and the optional hardware stage for goals that ask for it: ``hardware.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import time

from qiskit import QuantumCircuit

from . import results as R
from .barren import BarrenSettings, preload_reference
from .goals import Goal
from .guard import GuardLimit, StageFailed, TrustedConfig, run_guarded
from .hardware import preload_backend
from .reference import product_state_energy
from .sandbox import SandboxConfig, load_circuit, run_candidate
from .stages import check_circuits, failure_message, finish, public_sandbox, score_stages, warm_up
from .transfer import bp_goals, bp_sizes, set_sizes
from .vqe import VQESettings

log = logging.getLogger(__name__)
_SANDBOX_STATUS = {"error": R.STATUS_ERROR, "timeout": R.STATUS_TIMEOUT, "resource": R.STATUS_RESOURCE}


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The scoring settings tree: every knob of the cascade, each in one place. Defaults are the project's scoring
    policy (bump SCORER_VERSION when they change). Built from the environment once, at the edge (a task, a CLI
    command, a training pool: ``workers/settings.py``), and passed down; nothing below reads the environment."""

    sandbox: SandboxConfig = dataclasses.field(default_factory=SandboxConfig)
    """Limits of the sandboxed build (wall time, memory, processes, output)."""
    trusted: TrustedConfig = dataclasses.field(default_factory=TrustedConfig)
    """Time and memory limits of the trusted stages (verification, BP check, VQE), each in a guarded child."""
    barren: BarrenSettings = dataclasses.field(default_factory=BarrenSettings)
    """The barren-plateau check: samples per size, sizes of the fit, the calibrated rules."""
    vqe: VQESettings = dataclasses.field(default_factory=VQESettings)
    """VQE scoring: restarts, L-BFGS-B limits and tolerances, the time budget."""
    engine: str = "auto"
    """Simulator for energies and gradients, in the barren-plateau check and VQE alike: auto, statevector or aer."""
    run_bp: bool = True
    """Run the barren-plateau check."""
    run_vqe: bool = True
    """Run VQE scoring."""
    stop_on_barren_plateau: bool = True
    """Skip VQE for a candidate flagged as a barren plateau (it is still stored as valid, with zero energy reward)."""

    def with_knobs(self, *, bp_samples: int | None = None, restarts: int | None = None,
                   engine: str | None = None) -> EvaluationConfig:
        """A copy with the knobs callers set most often replaced (``None`` keeps the current value):
        ``barren.samples``, ``vqe.restarts`` and ``engine``."""
        barren = self.barren if bp_samples is None else dataclasses.replace(self.barren, samples=int(bp_samples))
        vqe = self.vqe if restarts is None else dataclasses.replace(self.vqe, restarts=int(restarts))
        return dataclasses.replace(self, barren=barren, vqe=vqe, engine=self.engine if engine is None else engine)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A candidate after the cheap stages: either finished (``result``) or ready to score (``circuit``)."""

    goal: Goal
    seed: int
    result: R.EvaluationResult | None = None
    """The final result when the candidate stopped early (sandbox or verification failure)."""
    circuit: QuantumCircuit | None = None
    circuits: dict = dataclasses.field(default_factory=dict)
    """num_qubits -> verified circuit at that size (for the barren-plateau scaling fit)."""
    verification: R.VerificationResult | None = None
    sandbox: R.SandboxResult | None = None
    fingerprint: str | None = None
    reuse_key: str | None = None
    """``fingerprint.reuse_key`` of the verified circuits (every size): what score reuse is matched on."""
    timings: dict = dataclasses.field(default_factory=dict)


_finish = finish


def _load(box: R.SandboxResult, goal: Goal) -> tuple[dict, str | None]:
    """num_qubits -> circuit for every size that loads (goal's size first), or a message when the goal's does not.
    ``load_circuit`` checks and trial-loads the hostile bytes in a limited child first."""
    try:
        circuits = {goal.num_qubits: load_circuit(box.circuits_qpy[goal.num_qubits])}
    except Exception as exc:  # noqa: BLE001 - EvaluationError, a missing size, anything: the candidate's verdict
        return {}, f"the circuit returned by create_ansatz({goal.num_qubits}) could not be read: {exc}"
    for n, blob in box.circuits_qpy.items():
        if n != goal.num_qubits:
            try:
                circuits[n] = load_circuit(blob)
            except Exception:  # noqa: BLE001,S112 - an unreadable extra size is left out of the fit
                continue
    return circuits, None


def prepare(code: str, goal: Goal, *, seed: int = 0, config: EvaluationConfig | None = None) -> Prepared:
    """Sandboxed build at every size the BP check (and a goal set) needs, deserialisation, then, in a guarded child,
    verification, the liveness check, the other sizes' verification and the fingerprint."""
    config = config or EvaluationConfig()
    timings: dict[str, float] = {}
    if not isinstance(code, str) or not code.strip():
        return Prepared(goal, seed, result=_finish(
            R.STATUS_ERROR, goal, seed, "sandbox", timings,
            errors=["no code: expected a Python module defining create_ansatz(num_qubits)"]))
    sizes = [goal.num_qubits]
    if config.run_bp:  # every member of a goal set is checked at its own sizes (transfer.bp_goals)
        sizes += [n for n in bp_sizes(goal, max_qubits=config.barren.max_qubits) if n not in sizes]
    if goal.is_set:
        sizes += [n for n in set_sizes(goal) if n not in sizes]
    random.SystemRandom().shuffle(sizes)  # the goal's call is not recognisable by its position
    t = time.perf_counter()
    box = public_sandbox(run_candidate(code, sizes, config=config.sandbox, goal_size=goal.num_qubits))
    timings["sandbox"] = time.perf_counter() - t
    if box.status != "ok":
        status = _SANDBOX_STATUS.get(box.status, R.STATUS_ERROR)
        return Prepared(goal, seed, sandbox=box, result=_finish(status, goal, seed, "sandbox", timings,
                                                                errors=[box.error or box.status], sandbox=box))
    t = time.perf_counter()
    circuits, problem = _load(box, goal)
    if problem is not None:
        return Prepared(goal, seed, sandbox=box, result=_finish(R.STATUS_ERROR, goal, seed, "sandbox", timings,
                                                                sandbox=box, errors=[problem]))
    warm_up()
    try:
        verification, passed, (fingerprint, key), refused, problem = run_guarded(
            check_circuits, circuits, goal, seed, box, limits=config.trusted.verify_limits())
    except (GuardLimit, StageFailed) as exc:
        status = R.STATUS_RESOURCE if isinstance(exc, GuardLimit) else R.STATUS_ERROR
        return Prepared(goal, seed, sandbox=box, result=_finish(status, goal, seed, "verify", timings, sandbox=box,
                                                                errors=[failure_message("verify", exc)]))
    timings["verify"] = time.perf_counter() - t
    refused = {**{n: "could not be read" for n in box.circuits_qpy if n not in circuits}, **refused}
    if refused:  # the barren-plateau verdict names these sizes ("not measurable")
        box = public_sandbox(dataclasses.replace(box, size_errors={
            **box.size_errors, **{n: f"the circuit at this size fails verification: {m}" for n, m in refused.items()}}))
    if not verification.ok or problem:
        errors = verification.errors if not verification.ok else [problem]
        return Prepared(goal, seed, sandbox=box, verification=verification, result=_finish(
            R.STATUS_INVALID, goal, seed, "verify", timings, errors=errors, verification=verification, sandbox=box))
    return Prepared(goal, seed, circuit=circuits[goal.num_qubits], verification=verification, sandbox=box,
                    circuits={n: c for n, c in circuits.items() if n in passed}, fingerprint=fingerprint,
                    reuse_key=key, timings=timings)


def _preload_references(goal: Goal, config: EvaluationConfig, seed: int) -> None:
    """The reward's product-state energy and the BP level rule's random reference, cached in this process before
    the guarded child forks (each costs seconds once per goal; recomputed in every child otherwise)."""
    try:
        if not goal.is_set:
            product_state_energy(goal.hamiltonian)
        if config.run_bp:
            for bp_goal in bp_goals(goal):
                preload_reference(bp_goal, seed=seed, engine=config.engine, settings=config.barren)
    except Exception as exc:  # noqa: BLE001 - a cache miss only costs time; the child computes (and reports) it
        log.warning("could not precompute the reference energies of %s: %s", goal.name, exc)


def score(prepared: Prepared, *, config: EvaluationConfig | None = None) -> R.EvaluationResult:
    """Barren-plateau check, VQE (every member of a goal set), the hardware stage when the goal asks for it, then
    rewards, for a prepared candidate, in a guarded child (time and memory limits from ``config.trusted``): a limit
    or a crash is a ``resource`` verdict with a message, never a hang."""
    if prepared.result is not None:
        return prepared.result
    config = config or EvaluationConfig()
    goal, seed, timings = prepared.goal, prepared.seed, dict(prepared.timings)
    common = {"verification": prepared.verification, "sandbox": None, "fingerprint": prepared.fingerprint}
    if goal.hardware is not None:  # loaded here, once per worker: every forked child inherits it (several seconds)
        preload_backend(goal.hardware.backend)
    _preload_references(goal, config, seed)
    t = time.perf_counter()
    try:
        staged = functools.partial(score_stages, config=config,
                                   size_errors=dict(prepared.sandbox.size_errors) if prepared.sandbox else {})
        result = run_guarded(staged, prepared.circuit, prepared.circuits,
                             goal, seed, timings, common, limits=config.trusted.score_limits())
    except (GuardLimit, StageFailed) as exc:
        stage = getattr(exc, "stage", "") or ("bp" if config.run_bp else "vqe")
        status = R.STATUS_RESOURCE if isinstance(exc, GuardLimit) else R.STATUS_ERROR
        timings["score"] = time.perf_counter() - t
        return _finish(status, goal, seed, stage if stage in ("bp", "vqe", "hardware") else "bp", timings,
                       errors=[failure_message(stage, exc)], **dict(common, sandbox=prepared.sandbox))
    return dataclasses.replace(result, sandbox=prepared.sandbox, reuse_key=prepared.reuse_key)


def reuse_scores(prepared: Prepared, bp: R.BarrenPlateauResult | None, vqe: R.VQEResult | None, *,
                 source: str) -> R.EvaluationResult:
    """A result for ``prepared`` whose barren-plateau and VQE scores are copied from an earlier evaluation of the
    same circuit (same fingerprint). Verification, gate counts and the rewards (gate cost included) are this
    candidate's own."""
    if prepared.result is not None:
        return prepared.result
    stage = "done" if vqe is not None else "bp"
    timings = dict(prepared.timings, reused=0.0)
    result = _finish(R.STATUS_VALID, prepared.goal, prepared.seed, stage, timings, bp=bp, vqe=vqe,
                     verification=prepared.verification, sandbox=prepared.sandbox, fingerprint=prepared.fingerprint)
    return dataclasses.replace(result, reused_from=source, reuse_key=prepared.reuse_key)


def reusable(prepared: Prepared) -> bool:
    """Whether a caller may look ``prepared`` up by its reuse key and copy an earlier evaluation's scores
    (``reuse_scores``): built and verified, and neither a goal set nor a goal with the hardware stage (their extra
    metrics are not copied; they are always scored in full)."""
    goal = prepared.goal
    return prepared.result is None and bool(prepared.reuse_key) and goal.hardware is None and not goal.is_set


def evaluate_code(code: str, goal: Goal, *, seed: int = 0, config: EvaluationConfig | None = None
                  ) -> R.EvaluationResult:
    """Run the whole cascade (``prepare`` then ``score``) on untrusted ``code`` for ``goal``. Never raises for
    anything the code does. A caller with a store composes ``prepare``, its own lookup (``reusable``,
    ``reuse_scores``) and ``score`` instead (the evaluation task: ``workers/tasks.py``)."""
    config = config or EvaluationConfig()
    return score(prepare(code, goal, seed=seed, config=config), config=config)
