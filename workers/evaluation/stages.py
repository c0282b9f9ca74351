"""The trusted stages' bodies, as the cascade runs them inside ``guard.run_guarded`` children.

``check_circuits``: verification at the goal's size, the liveness check, verification of the extra (barren-plateau)
sizes under limits derived from the goal's, and the fingerprint. ``score_stages``: the barren-plateau check, then
VQE. Both turn every exception of a stage into a verdict with a message (``finish``), so a child always returns a
result unless a limit stops it. ``finish`` is also where every message meets the text cleaner.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from . import results as R
from .errors import EvaluationError
from .fingerprint import circuit_fingerprint, reuse_key
from .goals import Goal
from .hardware import score_hardware
from .liveness import constant_energy_message
from .rewards import compute_rewards
from .text import clean_all, clean_text
from .transfer import check_every_barren_plateau, member_problem, score_set
from .verify import verify_circuit
from .vqe import score_vqe

log = logging.getLogger("qmind.evaluation")
_STAGE_NAMES = {"bp": "the barren-plateau check", "vqe": "VQE", "verify": "verification",
                "hardware": "the hardware stage"}


def finish(status: str, goal: Goal, seed: int, stage: str, timings: dict, *, errors=(), verification=None, bp=None,
           vqe=None, sandbox=None, fingerprint=None, hardware=None, goal_set=None) -> R.EvaluationResult:
    """The final result of an evaluation; every message is cleaned and capped (``text.clean_text``)."""
    # a goal set's energy is its worst member's: normalised by that member's Hamiltonian
    energy_goal = next((m for m in goal.members if goal_set and m.name == goal_set.worst_member), goal)
    reward = compute_rewards(status, verification, bp, vqe, goal, hardware=hardware, energy_goal=energy_goal)
    if verification is not None and verification.errors:
        verification = dataclasses.replace(verification, errors=clean_all(verification.errors))
    return R.EvaluationResult(status=status, errors=clean_all(errors), stage=stage, goal=goal.name,
                              verification=verification, bp=bp, vqe=vqe, reward=reward, sandbox=sandbox,
                              hardware=hardware, goal_set=goal_set,
                              seed=seed, timings={k: round(v, 4) for k, v in timings.items()},
                              fingerprint=fingerprint)


def public_sandbox(box: R.SandboxResult) -> R.SandboxResult:
    """``box`` with every candidate-derived string cleaned and capped (stdout/stderr keep their last lines)."""
    return dataclasses.replace(
        box, error=None if box.error is None else clean_text(box.error),
        stdout=clean_text(box.stdout, keep="tail"), stderr=clean_text(box.stderr, keep="tail"),
        size_errors={int(n): clean_text(m) for n, m in list(box.size_errors.items())[:16]})


def failure_message(stage: str, exc: BaseException) -> str:
    """An exception of a stage as a verdict message (what failed and why)."""
    if isinstance(exc, EvaluationError):
        return str(exc)
    return f"{_STAGE_NAMES.get(stage, stage)} failed on this circuit: {type(exc).__name__}: {exc}"


@functools.cache
def warm_up() -> None:
    """Compile (or load from numba's cache) the simulator kernels in this process once, before any guarded child is
    forked, on a fixed circuit with every default gate: children inherit them instead of compiling each time (tens
    of seconds on a busy machine, lost with the child, and counted against its time limit)."""
    import numpy as np

    from .goals import get_goal
    from .simulation.engines import blas_threads, make_engine

    goal = get_goal("tfim-4")
    qc = QuantumCircuit(4)
    for k, gate in enumerate(("rx", "ry", "rz", "rzz")):
        args = (k, (k + 1) % 4) if gate == "rzz" else (k,)
        getattr(qc, gate)(Parameter(f"w{k}"), *args)
    qc.h(0)
    qc.x(1)
    qc.cx(0, 1)
    qc.cz(2, 3)
    start = time.perf_counter()
    try:
        with blas_threads():
            engine = make_engine(qc, goal.hamiltonian)
            for batch in (1, 3):
                thetas = np.linspace(0.1, 1.0, batch * 4).reshape(batch, 4)
                engine.energies(thetas)
                engine.energies_and_gradients(thetas)
                engine.angle_gradients(thetas)
    except Exception:
        log.exception("simulator warm-up failed; guarded children compile their own kernels")
    log.debug("simulator warm-up took %.2f s", time.perf_counter() - start)


def goal_at(goal: Goal, n: int) -> Goal:
    """The goal (or the goal set's member) at ``n`` qubits."""
    same = [m for m in goal.members if m.num_qubits == n]
    return same[0] if same else (goal.members[0] if goal.is_set else goal).at_size(n)


def extra_size_goal(goal: Goal, num_qubits: int) -> Goal:
    """The goal at an extra (barren-plateau or goal-set) size, with the depth limit scaled by n'/n (never below the
    goal's): an ansatz whose depth grows with n stays valid, one that is honest at the goal size and huge elsewhere
    is not."""
    scaled = math.ceil(goal.max_depth * max(1.0, num_qubits / goal.num_qubits))
    at_size = goal_at(goal, num_qubits)
    return dataclasses.replace(at_size, max_depth=max(scaled, at_size.max_depth))


def _liveness(circuit: QuantumCircuit, goal: Goal, verification: R.VerificationResult,
              seed: int) -> R.VerificationResult:
    """``verification`` failed with a message when no Parameter changes the energy (``liveness.py``)."""
    try:
        message = constant_energy_message(circuit, goal.hamiltonian, seed=seed)
    except EvaluationError as exc:
        message = f"the circuit cannot be simulated: {exc}"
    if message is None:
        return verification
    return dataclasses.replace(verification, ok=False, errors=verification.errors + (message,))


def check_circuits(circuits: dict, goal: Goal, seed: int, box: R.SandboxResult, *,
                   progress: Callable[[str], None] = lambda stage: None) -> tuple:
    """(verification, sizes that passed, (fingerprint, reuse key), {size: why refused}, goal-set problem or None) for
    ``circuits`` (num_qubits -> circuit, the goal's size first). Extra sizes that fail their own verification are
    left out of the barren-plateau fit; the caller names them in the sandbox result's size errors."""
    progress("verify")
    circuit = circuits[goal.num_qubits]
    verification = verify_circuit(circuit, goal)
    if verification.ok:
        verification = _liveness(circuit, goal, verification, seed)
    if not verification.ok:
        return verification, (), (None, None), {}, None
    passed, refused = [goal.num_qubits], {}
    for n, other in circuits.items():
        if n != goal.num_qubits:
            check = verify_circuit(other, extra_size_goal(goal, n))
            if check.ok:
                passed.append(n)
            else:
                refused[n] = "; ".join(check.errors)
    problem = None
    if goal.is_set:
        problem = member_problem({n: c for n, c in circuits.items() if n in passed}, box, goal)
    progress("fingerprint")
    try:
        fingerprint = circuit_fingerprint(circuit)
    except EvaluationError:
        fingerprint = None
    try:
        key = reuse_key({n: circuits[n] for n in passed}, R.SCORER_VERSION)
    except Exception:  # noqa: BLE001 - no key: never reused, scored in full
        key = None
    return verification, tuple(passed), (fingerprint, key), refused, problem


def score_stages(circuit: QuantumCircuit, circuits: dict, goal: Goal, seed: int, timings: dict, common: dict, *,
                 config, progress: Callable[[str], None] = lambda stage: None,
                 size_errors: dict | None = None) -> R.EvaluationResult:
    """Barren-plateau check, VQE (every member of a goal set), the hardware stage when the goal asks for it
    (``config``: the cascade's EvaluationConfig); a verdict, never an exception. ``size_errors``: why an extra size
    is missing (the barren-plateau verdict is then "not measurable" and says why)."""
    bp = None
    if config.run_bp:
        progress("bp")
        t = time.perf_counter()
        try:
            bp = check_every_barren_plateau(circuits, goal, seed=seed, engine=config.engine,
                                            settings=config.barren, size_errors=size_errors)
        except Exception as exc:  # noqa: BLE001 - a stage failing on a hostile circuit is a verdict
            return finish(R.STATUS_ERROR, goal, seed, "bp", timings, errors=[failure_message("bp", exc)], **common)
        timings["bp"] = time.perf_counter() - t
        if bp.has_barren_plateau and config.stop_on_barren_plateau:
            # valid, but not worth optimising: bp.reason says why; the energy reward stays 0
            return _with_hardware(circuit, goal, seed, "bp", timings, bp=bp, vqe=None, progress=progress, **common)
    vqe = own = None
    if config.run_vqe:
        progress("vqe")
        t = time.perf_counter()
        common = dict(common)
        try:
            if goal.is_set:
                vqe, common["goal_set"], own = score_set(circuits, goal, seed=seed, engine=config.engine,
                                                         settings=config.vqe)
            else:
                vqe = score_vqe(circuit, goal, seed=seed, engine=config.engine, settings=config.vqe)
        except Exception as exc:  # noqa: BLE001
            return finish(R.STATUS_ERROR, goal, seed, "vqe", timings, errors=[failure_message("vqe", exc)], bp=bp,
                          **common)
        timings["vqe"] = time.perf_counter() - t
        if vqe.below_exact:
            return finish(R.STATUS_FLAGGED, goal, seed, "vqe", timings, bp=bp, vqe=vqe, **common,
                          errors=[(f"energy {vqe.energy:.10f} is below the exact ground energy "
                                   f"{vqe.exact_energy:.10f}: a simulator bug or an exploit; not rewarded")])
    return _with_hardware(circuit, goal, seed, "done", timings, bp=bp, vqe=vqe, own=own, progress=progress, **common)


def _with_hardware(circuit: QuantumCircuit, goal: Goal, seed: int, stage: str, timings: dict, *, bp, vqe, own=None,
                   progress: Callable[[str], None], **common) -> R.EvaluationResult:
    """A valid result, after the hardware stage when the goal asks for it (routed cost always, the noisy energy
    at the best parameters of the goal's own circuit, ``own`` (default ``vqe``), when VQE ran)."""
    own = own or vqe
    hardware = None
    if goal.hardware is not None:
        progress("hardware")
        t = time.perf_counter()
        try:
            hardware = score_hardware(circuit, goal, own.best_parameters if own is not None else None, seed=seed)
        except Exception as exc:  # noqa: BLE001
            return finish(R.STATUS_ERROR, goal, seed, "hardware", timings, errors=[failure_message("hardware", exc)],
                          bp=bp, vqe=vqe, **common)
        timings["hardware"] = time.perf_counter() - t
    return finish(R.STATUS_VALID, goal, seed, stage, timings, bp=bp, vqe=vqe, hardware=hardware, **common)
