"""Frozen result dataclasses of the evaluation core. Each serialises to JSON for the store and the CLI.

These are the contracts the sandbox, the scorer, the queue, the store and the trainer share. Add fields with
defaults; never rename one without a migration.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

# Bump when anything that changes a score changes (simulator, optimizer defaults, BP criteria, reward formulas).
SCORER_VERSION = "2026.12.2"

# Status values of an evaluation, in the order a candidate meets them.
STATUS_VALID = "valid"  # built, verified and scored
STATUS_ERROR = "error"  # the code raised, did not define create_ansatz, or did not build
STATUS_TIMEOUT = "timeout"  # wall-clock or CPU limit in the sandbox
STATUS_RESOURCE = "resource"  # memory, process or output limit in the sandbox
STATUS_INVALID = "invalid"  # built a circuit that fails verification (width, parameters, gates, depth)
STATUS_FLAGGED = "flagged"  # scored below the exact energy: a bug or an exploit; never rewarded
STATUS_FAILED = "failed"  # the queue gave up after N attempts (a candidate that kills its worker)
STATUSES = (STATUS_VALID, STATUS_ERROR, STATUS_TIMEOUT, STATUS_RESOURCE, STATUS_INVALID, STATUS_FLAGGED,
            STATUS_FAILED)


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, tuples lists, nested dataclasses dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _clean(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


class _JSON:
    def to_dict(self) -> dict[str, Any]:
        return _clean(self)


@dataclasses.dataclass(frozen=True)
class SandboxResult(_JSON):
    """What came back from running untrusted code in the sandbox."""

    status: str
    """``ok``, or ``error`` / ``timeout`` / ``resource`` (see STATUS_*)."""
    error: str | None = None
    """What went wrong, in words fit to feed back to the model."""
    circuits_qpy: dict = dataclasses.field(default_factory=dict, repr=False)
    """num_qubits -> serialised circuit (QPY bytes), size-capped; deserialise only with ``sandbox.load_circuit``.
    The goal's own size first; other sizes (for the barren-plateau scaling fit) when asked for."""
    size_errors: dict = dataclasses.field(default_factory=dict)
    """num_qubits -> why create_ansatz failed at that extra size (the goal's own size failing is ``error``)."""
    stdout: str = ""
    """Captured standard output of the candidate (truncated to the configured cap)."""
    stderr: str = ""
    """Captured standard error (truncated), including the traceback of an exception."""
    wall_seconds: float = 0.0
    """Wall-clock time of the sandboxed process."""
    isolation: str = ""
    """``bwrap`` (namespaces + seccomp + rlimits) or ``rlimits`` (the weaker fallback)."""


@dataclasses.dataclass(frozen=True)
class VerificationResult(_JSON):
    """Static checks of a built circuit against a goal's limits."""

    ok: bool
    """True when every check passed."""
    errors: tuple[str, ...] = ()
    """One specific message per failed check."""
    num_qubits: int = 0
    depth: int = 0
    """``QuantumCircuit.depth()`` of the circuit as built (before any decomposition)."""
    num_parameters: int = 0
    """Distinct trainable Parameters."""
    gate_counts: dict = dataclasses.field(default_factory=dict)
    """Gate name -> count."""
    num_two_qubit_gates: int = 0


@dataclasses.dataclass(frozen=True)
class BarrenPlateauResult(_JSON):
    """Gradient-variance scaling of an ansatz (McClean et al. 2018; Cerezo et al. 2021)."""

    has_barren_plateau: bool
    method: str
    """``scaling`` (lattice goals: fit log-variance against n) or ``two-design`` (fixed-size goals)."""
    sizes: tuple[int, ...] = ()
    """Qubit counts at which the variance was estimated."""
    variances: tuple[float, ...] = ()
    """Mean over sampled parameters of Var[dE/dtheta_k], one per size."""
    parameter_variances: tuple[tuple[float, ...], ...] = ()
    """Per size, the variance of each sampled parameter's derivative."""
    decay_rate: float | None = None
    """Fitted b in Var ~ exp(-b n) (per qubit); None for fixed-size goals."""
    decay_rate_stderr: float | None = None
    """Standard error of the fitted decay rate."""
    two_design_variance: float | None = None
    """Variance a unitary 2-design would give for this Hamiltonian (fixed-size goals)."""
    samples: int = 0
    """Random parameter vectors per size."""
    seed: int = 0
    seconds: float = 0.0
    reason: str = ""
    """Why it was (or was not) flagged, in words."""
    normalised_variances: tuple[float, ...] = ()
    """Per size, ``variances`` divided by the Hamiltonian's scale sum_P c_P^2 (identity excluded): the fitted
    quantity, so a Hamiltonian with more terms at larger n cannot hide a decay."""
    two_design_ratios: tuple[float, ...] = ()
    """Per size, the variance divided by the level a unitary 2-design would give for the same parameters."""
    parameter_names: tuple[tuple[str, ...], ...] = ()
    """Per size, the names of the parameters in ``parameter_variances`` (first, middle, last, a few random)."""
    engine: str = ""
    """Which simulator computed the gradients."""
    verdict: str = ""
    """``barren plateau``, ``no barren plateau`` or ``not measurable`` (paid as a barren plateau: the check could
    not be carried out on what the candidate built, see barren.py); empty on results from before 2026.12."""


@dataclasses.dataclass(frozen=True)
class VQEResult(_JSON):
    """Variational minimisation of the goal's energy over the circuit's parameters."""

    energy: float
    """Best energy over all restarts."""
    exact_energy: float
    error: float
    """energy - exact_energy (>= 0 unless flagged)."""
    relative_error: float
    """error / |exact_energy|."""
    chemical_accuracy: bool | None
    """error <= 1.6 mHa for molecules; None for other goals."""
    below_exact: bool
    """Energy below the exact energy by more than tolerance: a bug or an exploit, never rewarded."""
    evaluations: int
    """Energy evaluations (each gradient counts as the circuit executions it took, reported separately)."""
    gradient_evaluations: int
    seconds: float
    restarts: int
    seeds: tuple[int, ...]
    success_fraction: float
    """Fraction of restarts that reached the best energy within tolerance."""
    optimizer: str
    best_parameters: tuple[float, ...] = dataclasses.field(default=(), repr=False)
    restart_energies: tuple[float, ...] = ()
    engine: str = ""
    """Which simulator computed energies and gradients."""
    circuit_executions: int = 0
    """Parameter vectors the engine simulated (Aer: every shifted binding; statevector: forward passes)."""
    check_energy: float | None = None
    """The best parameters' energy recomputed independently with ``qiskit.quantum_info.Statevector`` on the
    circuit as built (not the compiled program)."""
    truncated: bool = False
    """The time budget ran out before every restart converged (the best energy so far is reported)."""


@dataclasses.dataclass(frozen=True)
class HardwareResult(_JSON):
    """The circuit transpiled to a fake IBM device, and its energy under that device's noise model."""

    backend: str
    """Fake backend name (calibration snapshot shipped with qiskit-ibm-runtime)."""
    routed_two_qubit_gates: int
    """Two-qubit gates after layout, routing and translation to the device's basis (seeded transpile)."""
    routed_depth: int
    """Depth of the transpiled circuit (all gates)."""
    routed_two_qubit_depth: int = 0
    """Depth counting two-qubit gates only."""
    routed_gate_counts: dict = dataclasses.field(default_factory=dict)
    active_qubits: int = 0
    """Physical qubits the routed circuit touches (routing can use more than the goal's qubits)."""
    layout: tuple[int, ...] = ()
    """Physical qubit of each logical qubit at the end of the circuit."""
    optimization_level: int = 1
    seed: int = 0
    """Seed of the transpiler and the shot simulator."""
    noisy_energy: float | None = None
    """Energy at the VQE's best parameters estimated from ``shots`` noisy shots; None when not measured."""
    noisy_stderr: float | None = None
    """One standard error of ``noisy_energy`` (shot noise; see ``simulation/noisy.py``)."""
    noisy_error: float | None = None
    """noisy_energy - exact ground energy."""
    shots: int = 0
    """Shots spent (shot budget split evenly over the measurement groups)."""
    groups: int = 0
    """Qubit-wise commuting measurement groups."""
    method: str = ""
    """Aer method of the noisy simulation."""
    not_measured: str = ""
    """Why there is no noisy energy ('' when there is one)."""
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class GoalSetResult(_JSON):
    """One program scored over every member of a goal set (``goals/goal_set.py``, ``transfer.py``)."""

    members: tuple = ()
    """Per member: {name, num_qubits, energy, exact_energy, error, success_fraction}."""
    mean_error: float | None = None
    worst_error: float | None = None
    """The largest member error: what the set's ``vqe`` result (and so the ranking and reward) carries."""
    worst_member: str = ""
    extrapolation_qubits: int | None = None
    """The held-out lattice size (larger than every member), or None."""
    extrapolation_error: float | None = None
    """VQE error at the held-out size (reported, never paid); None when not measured."""
    extrapolation_exact_energy: float | None = None
    extrapolation_note: str = ""
    """Why there is no extrapolation error ('' when there is one)."""


@dataclasses.dataclass(frozen=True)
class RewardResult(_JSON):
    """Rewards computed from stored metrics (never from a number the candidate produced)."""

    version: str
    seed_reward: float
    """max(0, 1 - eps), eps = (E - E0) / (E_ref - E0) against the best product state (rewards.py); 0 for anything
    not valid."""
    shaped_reward: float
    """Validity + barren-plateau + energy + gate-cost components, in [0, 1]."""
    components: dict = dataclasses.field(default_factory=dict)
    seed_reward_literal: float = 0.0
    """The seed document's formula as written, max(0, 1 - 10 * (E - E0)) in the goal's energy unit (comparison
    only; not a training reward)."""


@dataclasses.dataclass(frozen=True)
class EvaluationResult(_JSON):
    """The whole cascade for one candidate on one goal."""

    status: str
    """One of STATUSES."""
    errors: tuple[str, ...] = ()
    """Messages fit to feed back to the model (empty when valid)."""
    stage: str = ""
    """Last stage reached: sandbox, verify, bp, vqe, done."""
    goal: str = ""
    verification: VerificationResult | None = None
    bp: BarrenPlateauResult | None = None
    vqe: VQEResult | None = None
    reward: RewardResult | None = None
    hardware: HardwareResult | None = None
    """The optional hardware stage (goals with ``hardware`` set)."""
    goal_set: GoalSetResult | None = None
    """Per-member errors, mean, worst and extrapolation (goal sets only)."""
    sandbox: SandboxResult | None = None
    scorer_version: str = SCORER_VERSION
    seed: int = 0
    timings: dict = dataclasses.field(default_factory=dict)
    """Seconds per stage."""
    fingerprint: str | None = None
    """``fingerprint.circuit_fingerprint`` of the built circuit (renaming-invariant), when it was built."""
    reused_from: str | None = None
    """When the scores were copied from an earlier evaluation of the same circuit: that evaluation's key."""
    reuse_key: str | None = None
    """``fingerprint.reuse_key`` of the circuits scored (all sizes): the exact key a later copy is matched on."""

    def to_cli_json(self) -> dict[str, Any]:
        """The object ``qmind evaluate --json`` prints (contract relied on by scripts and tests)."""
        out: dict[str, Any] = {"status": self.status, "errors": list(self.errors), "goal": self.goal,
                               "stage": self.stage, "scorer_version": self.scorer_version, "seed": self.seed,
                               "fingerprint": self.fingerprint}
        if self.verification is not None:
            v = self.verification
            out.update(depth=v.depth, num_parameters=v.num_parameters, gate_counts=dict(v.gate_counts),
                       num_two_qubit_gates=v.num_two_qubit_gates)
        out["bp"] = None if self.bp is None else _clean({
            "has_barren_plateau": self.bp.has_barren_plateau, "method": self.bp.method,
            "sizes": list(self.bp.sizes), "variances": list(self.bp.variances), "decay_rate": self.bp.decay_rate,
            "decay_rate_stderr": self.bp.decay_rate_stderr, "two_design_variance": self.bp.two_design_variance,
            "verdict": self.bp.verdict, "reason": self.bp.reason, "samples": self.bp.samples,
            "engine": self.bp.engine})
        out["vqe"] = None if self.vqe is None else _clean({
            "energy": self.vqe.energy, "exact_energy": self.vqe.exact_energy, "error": self.vqe.error,
            "relative_error": self.vqe.relative_error, "chemical_accuracy": self.vqe.chemical_accuracy,
            "below_exact": self.vqe.below_exact, "evaluations": self.vqe.evaluations,
            "gradient_evaluations": self.vqe.gradient_evaluations, "seconds": self.vqe.seconds,
            "restarts": self.vqe.restarts, "seeds": list(self.vqe.seeds),
            "success_fraction": self.vqe.success_fraction, "engine": self.vqe.engine})
        out["hardware"] = None if self.hardware is None else self.hardware.to_dict()
        out["goal_set"] = None if self.goal_set is None else self.goal_set.to_dict()
        out["reward"] = None if self.reward is None else self.reward.to_dict()
        out["timings"] = _clean(self.timings)
        return out
