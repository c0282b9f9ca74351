"""One candidate's evaluation: sandbox -> verify -> barren-plateau check -> VQE (every member of a goal set:
``transfer.py``) -> [hardware] -> rewards.

Cheap stages first; each stage stops a candidate that fails it. The candidate's code runs only inside the sandbox,
which hands back serialised circuits; everything after that runs here, in the trusted process, on the deserialised
circuit, so a candidate can never touch the scorer.

Two halves so a caller can skip the expensive part for a circuit it has already scored:
``prepare`` (sandbox + verification + fingerprint, about a second) and ``score`` (barren-plateau check + VQE, and
the optional hardware stage for goals that ask for it: ``hardware.py``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

from qiskit import QuantumCircuit

from . import results as R
from .barren import check_barren_plateau, scaling_sizes
from .errors import EvaluationError
from .fingerprint import circuit_fingerprint
from .goals import Goal
from .hardware import score_hardware
from .liveness import constant_energy_message
from .rewards import compute_rewards
from .sandbox import SandboxConfig, load_circuit, run_candidate
from .transfer import member_problem, score_set, set_sizes
from .verify import verify_circuit
from .vqe import score_vqe

_SANDBOX_STATUS = {"error": R.STATUS_ERROR, "timeout": R.STATUS_TIMEOUT, "resource": R.STATUS_RESOURCE}


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Settings of the cascade. Defaults are the project's scoring policy (bump SCORER_VERSION when they change)."""

    sandbox: SandboxConfig = dataclasses.field(default_factory=SandboxConfig)
    """Limits of the sandboxed build (wall time, memory, processes, output)."""
    bp_samples: int = 200
    """Random parameter vectors per size for the gradient-variance estimate."""
    run_bp: bool = True
    """Run the barren-plateau check."""
    run_vqe: bool = True
    """Run VQE scoring."""
    stop_on_barren_plateau: bool = True
    """Skip VQE for a candidate flagged as a barren plateau (it is still stored as valid, with zero energy reward)."""
    restarts: int = 4
    """Seeded random restarts of the VQE optimiser."""
    engine: str = "auto"
    """Simulator for energies and gradients: auto, statevector or aer."""

    @classmethod
    def from_env(cls) -> EvaluationConfig:
        """Defaults overridden by QMIND_BP_SAMPLES, QMIND_VQE_RESTARTS, QMIND_ENGINE and QMIND_SANDBOX_*."""
        return cls(
            sandbox=SandboxConfig.from_env(),
            bp_samples=int(os.environ.get("QMIND_BP_SAMPLES", "200")),
            restarts=int(os.environ.get("QMIND_VQE_RESTARTS", "4")),
            engine=os.environ.get("QMIND_ENGINE", "auto"),
        )


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
    timings: dict = dataclasses.field(default_factory=dict)


def _finish(status: str, goal: Goal, seed: int, stage: str, timings: dict, *, errors=(), verification=None, bp=None,
            vqe=None, sandbox=None, fingerprint=None, hardware=None, goal_set=None) -> R.EvaluationResult:
    # a goal set's energy is its worst member's: normalised by that member's Hamiltonian
    energy_goal = next((m for m in goal.members if goal_set and m.name == goal_set.worst_member), goal)
    reward = compute_rewards(status, verification, bp, vqe, goal, hardware=hardware, energy_goal=energy_goal)
    return R.EvaluationResult(status=status, errors=tuple(errors), stage=stage, goal=goal.name,
                              verification=verification, bp=bp, vqe=vqe, reward=reward, sandbox=sandbox,
                              hardware=hardware, goal_set=goal_set,
                              seed=seed, timings={k: round(v, 4) for k, v in timings.items()},
                              fingerprint=fingerprint)


def _check_liveness(circuit: QuantumCircuit, goal: Goal, verification: R.VerificationResult,
                    seed: int) -> R.VerificationResult:
    """``verification`` failed with a message when no Parameter changes the energy (``liveness.py``)."""
    try:
        message = constant_energy_message(circuit, goal.hamiltonian, seed=seed)
    except EvaluationError as exc:
        message = f"the circuit cannot be simulated: {exc}"
    if message is None:
        return verification
    return dataclasses.replace(verification, ok=False, errors=verification.errors + (message,))


def _goal_at(goal: Goal, n: int) -> Goal:
    """The goal (or the goal set's member) at ``n`` qubits."""
    same = [m for m in goal.members if m.num_qubits == n]
    return same[0] if same else (goal.members[0] if goal.is_set else goal).at_size(n)


def prepare(code: str, goal: Goal, *, seed: int = 0, config: EvaluationConfig | None = None) -> Prepared:
    """Sandboxed build at every size the BP check needs, deserialisation, verification and fingerprint."""
    config = config or EvaluationConfig()
    timings: dict[str, float] = {}
    if not isinstance(code, str) or not code.strip():
        return Prepared(goal, seed, result=_finish(
            R.STATUS_ERROR, goal, seed, "sandbox", timings,
            errors=["no code: expected a Python module defining create_ansatz(num_qubits)"]))
    sizes = [goal.num_qubits]
    if config.run_bp and goal.is_lattice:
        sizes += [n for n in scaling_sizes(goal) if n != goal.num_qubits]
    if goal.is_set:
        sizes += [n for n in set_sizes(goal) if n not in sizes]
    t = time.perf_counter()
    box = run_candidate(code, sizes, config=config.sandbox)
    timings["sandbox"] = time.perf_counter() - t
    if box.status != "ok":
        status = _SANDBOX_STATUS.get(box.status, R.STATUS_ERROR)
        return Prepared(goal, seed, sandbox=box, result=_finish(status, goal, seed, "sandbox", timings,
                                                                errors=[box.error or box.status], sandbox=box))
    t = time.perf_counter()
    try:
        circuit = load_circuit(box.circuits_qpy[goal.num_qubits])
    except (EvaluationError, KeyError) as exc:
        return Prepared(goal, seed, sandbox=box, result=_finish(
            R.STATUS_ERROR, goal, seed, "sandbox", timings, sandbox=box,
            errors=[f"the circuit returned by create_ansatz({goal.num_qubits}) could not be read: {exc}"]))
    verification = verify_circuit(circuit, goal)
    if verification.ok:
        verification = _check_liveness(circuit, goal, verification, seed)
    timings["verify"] = time.perf_counter() - t
    if not verification.ok:
        return Prepared(goal, seed, sandbox=box, verification=verification, result=_finish(
            R.STATUS_INVALID, goal, seed, "verify", timings, errors=verification.errors,
            verification=verification, sandbox=box))
    circuits = {goal.num_qubits: circuit}
    for n, blob in box.circuits_qpy.items():
        if n == goal.num_qubits:
            continue
        try:
            other = load_circuit(blob)
        except EvaluationError:
            continue
        # other sizes must have the right width and gates; the depth limit is the goal's own size's business
        if verify_circuit(other, dataclasses.replace(_goal_at(goal, n), max_depth=10**9)).ok:
            circuits[n] = other
    problem = member_problem(circuits, box, goal) if goal.is_set else None
    if problem:
        return Prepared(goal, seed, sandbox=box, verification=verification, result=_finish(
            R.STATUS_INVALID, goal, seed, "verify", timings, errors=[problem], verification=verification,
            sandbox=box))
    try:
        fingerprint = circuit_fingerprint(circuit)
    except EvaluationError:
        fingerprint = None
    return Prepared(goal, seed, circuit=circuit, circuits=circuits, verification=verification, sandbox=box,
                    fingerprint=fingerprint, timings=timings)


def _with_hardware(prepared: Prepared, stage: str, timings: dict, *, bp, vqe, own=None,
                   **common) -> R.EvaluationResult:
    """A valid result, after the hardware stage when the goal asks for it (routed cost always, the noisy energy
    at the best parameters of the goal's own circuit, ``own`` (default ``vqe``), when VQE ran)."""
    goal, seed = prepared.goal, prepared.seed
    own = own or vqe
    hardware = None
    if goal.hardware is not None:
        t = time.perf_counter()
        try:
            hardware = score_hardware(prepared.circuit, goal, own.best_parameters if own is not None else None,
                                      seed=seed)
        except EvaluationError as exc:
            return _finish(R.STATUS_ERROR, goal, seed, "hardware", timings, errors=[str(exc)], bp=bp, vqe=vqe,
                           **common)
        timings["hardware"] = time.perf_counter() - t
    return _finish(R.STATUS_VALID, goal, seed, stage, timings, bp=bp, vqe=vqe, hardware=hardware, **common)


def score(prepared: Prepared, *, config: EvaluationConfig | None = None) -> R.EvaluationResult:
    """Barren-plateau check, then VQE, then rewards, for a prepared candidate."""
    if prepared.result is not None:
        return prepared.result
    config = config or EvaluationConfig()
    goal, seed, timings = prepared.goal, prepared.seed, dict(prepared.timings)
    common = {"verification": prepared.verification, "sandbox": prepared.sandbox, "fingerprint": prepared.fingerprint}
    bp = None
    if config.run_bp:
        t = time.perf_counter()
        try:
            bp = check_barren_plateau(prepared.circuits, goal, samples=config.bp_samples, seed=seed)
        except EvaluationError as exc:
            return _finish(R.STATUS_ERROR, goal, seed, "bp", timings, errors=[str(exc)], **common)
        timings["bp"] = time.perf_counter() - t
        if bp.has_barren_plateau and config.stop_on_barren_plateau:
            # valid, but not worth optimising: bp.reason says why; the energy reward stays 0
            return _with_hardware(prepared, "bp", timings, bp=bp, vqe=None, **common)
    vqe = own = None
    if config.run_vqe:
        t = time.perf_counter()
        try:
            if goal.is_set:
                vqe, common["goal_set"], own = score_set(prepared.circuits, goal, restarts=config.restarts,
                                                         seed=seed, engine=config.engine)
            else:
                vqe = score_vqe(prepared.circuit, goal, restarts=config.restarts, seed=seed, engine=config.engine)
        except EvaluationError as exc:
            return _finish(R.STATUS_ERROR, goal, seed, "vqe", timings, errors=[str(exc)], bp=bp, **common)
        timings["vqe"] = time.perf_counter() - t
        if vqe.below_exact:
            return _finish(R.STATUS_FLAGGED, goal, seed, "vqe", timings, bp=bp, vqe=vqe, **common,
                           errors=[(f"energy {vqe.energy:.10f} is below the exact ground energy "
                                   f"{vqe.exact_energy:.10f}: a simulator bug or an exploit; not rewarded")])
    return _with_hardware(prepared, "done", timings, bp=bp, vqe=vqe, own=own, **common)


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
    return dataclasses.replace(result, reused_from=source)


def evaluate_code(code: str, goal: Goal, *, seed: int = 0, config: EvaluationConfig | None = None,
                  reuse: Callable[[str], tuple | None] | None = None) -> R.EvaluationResult:
    """Run the whole cascade on untrusted ``code`` for ``goal``. Never raises for anything the code does.

    ``reuse(fingerprint) -> (bp, vqe, source) | None`` lets a caller hand back the scores of an earlier evaluation
    of the same circuit (a renamed copy), so the expensive stages are skipped. Goal sets and goals with the
    hardware stage are always scored in full (their extra metrics are not copied).
    """
    config = config or EvaluationConfig()
    prepared = prepare(code, goal, seed=seed, config=config)
    if prepared.result is None and prepared.fingerprint and reuse is not None and goal.hardware is None \
            and not goal.is_set:
        found = reuse(prepared.fingerprint)
        if found is not None:
            bp, vqe, source = found
            return reuse_scores(prepared, bp, vqe, source=source)
    return score(prepared, config=config)
