"""Barren-plateau verdict: "barren plateau", "no barren plateau" or "not measurable" (paid like a plateau).

For each size the ansatz is built at (``scaling_sizes``), ``samples`` parameter vectors are drawn with every angle
uniform modulo 2 pi and the exact derivatives are taken per unit angle step (angles.py), so reparametrising the
Parameters changes nothing. The per-size figure is the mean over Parameters of their variance, compared with a
unitary 2-design's for one rotation (``two_design_variance``). Rules (docs/scoring.md has the calibration,
benchmarks/bp_calibration.py reproduces it):

- rules apply only to circuits with at least ``entangling_per_qubit`` (2.5) two-qubit gates per qubit;
- **level rule** (>= 6 qubits): flag when the variance at the goal's size is at most ``level_factor`` (3) times
  that of a random circuit at the goal's depth limit, measured the same way (``random_reference``);
- **scaling rule** (lattice goals): fit ``log(Var / S_n) = a - b n`` (S_n = sum c_P^2, identity excluded); flag
  when b > ``decay_threshold`` (0.45) and the level is within ``scaling_factor`` (10) of the reference;
- gradients that vanish identically are a barren plateau;
- a lattice candidate whose extra sizes are missing, fail verification or are not one family with the goal's
  circuit (family.py), or whose fit is not finite, is "not measurable": no fallback to a weaker rule.

References: J. R. McClean et al., "Barren plateaus in quantum neural network training landscapes", Nat. Commun.
9, 4812 (2018); M. Cerezo et al., "Cost function dependent barren plateaus in shallow parametrized quantum
circuits", Nat. Commun. 12, 1791 (2021).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp

from .angles import angle_unit_gradients, sample_parameters
from .errors import EvaluationError
from .family import DEAD_FRACTION_TOLERANCE, family_differences
from .goals import Goal
from .results import BarrenPlateauResult
from .simulation.engines import blas_threads, make_engine, resolve_engine
from .verify import verify_circuit

DECAY_THRESHOLD = 0.45
"""Per-qubit decay rate of the normalised variance above which an ansatz is flagged (a 2-design: ln 2 = 0.69;
random circuits at the depth limit fit 0.47-0.50 over n = 4..8, HVA at most 0.31; benchmarks/bp_calibration.py)."""
LEVEL_FACTOR = 3.0
"""Flag when the variance at the goal's size is at most this many times a random circuit's at the depth limit."""
SCALING_FACTOR = 10.0
"""The scaling rule flags only circuits whose variance at the goal's size is at most this many times the random
reference's (a fit over three small sizes alone mis-flags Hamiltonian-variational ansaetze whose depth grows with n)."""
RANDOM_LAYERS = 24
"""Layers of the reference random circuit (rotation layer + CZ brickwork each: depth 49, the default limit)."""
ENTANGLING_PER_QUBIT = 2.5
"""Both rules apply only to circuits with at least this many two-qubit gates per qubit (5 brickwork layers)."""
VERDICTS = ("barren plateau", "no barren plateau", "not measurable")


@dataclasses.dataclass(frozen=True)
class BarrenSettings:
    """Settings of the barren-plateau check (read from ``QMIND_BP_<FIELD>`` at the edge: ``workers/settings.py``)."""

    samples: int = 200
    """Random parameter vectors per size for the gradient-variance estimate."""
    max_qubits: int = 12
    """Largest size used for the scaling fit (keeps the check cheap; larger goals are assessed at 8, 10, 12)."""
    decay_threshold: float = DECAY_THRESHOLD
    """Flag lattice ansaetze whose normalised gradient variance decays faster than this per qubit."""
    level_factor: float = LEVEL_FACTOR
    """Level rule: flag when the mean angle-gradient variance at the goal's size is at most this many times that
    of a random circuit at the depth limit for the same Hamiltonian (``random_reference``; calibrated:
    benchmarks/bp_calibration.py, docs/scoring.md)."""
    entangling_per_qubit: float = ENTANGLING_PER_QUBIT
    """Rules apply from this many gates on two or more qubits per qubit at the goal's size (a local 2-design needs
    depth growing with n; at n <= 12 the gradient variance of a hardware-efficient ansatz with two CX chains is
    as low as a deep random circuit's, so the variance alone cannot tell them apart)."""
    scaling_factor: float = SCALING_FACTOR
    """Scaling rule: flag a decay above ``decay_threshold`` only when the variance at the goal's size is also at
    most this many times the random reference's."""
    level_min_qubits: int = 6
    """Below this many qubits the 2-design level itself is not small (S/34 at 4 qubits): the level rule is off."""
    vanishing: float = 1e-14
    """Normalised variance at or below this counts as identically vanishing gradients."""
    reported_parameters: int = 8
    """Per size, how many parameters' variances are reported (first, middle, last, then random)."""
    bootstrap: int = 200
    """Bootstrap resamples for the sampling error of each variance."""


def scaling_sizes(goal: Goal, *, max_qubits: int = BarrenSettings.max_qubits) -> list[int]:
    """Sizes for the scaling fit: the goal's family sizes (``Goal.family_sizes``: n, n-2, n-4 on chains, one column
    less per step on square lattices and ladders, capped at ``max_qubits``). Fixed-size goals: their own size."""
    return goal.family_sizes(max_qubits=max_qubits)


def hamiltonian_scale(hamiltonian: SparsePauliOp) -> float:
    """``S = sum_P |c_P|^2`` over non-identity Pauli terms, i.e. ``Tr(H0^2) / 2^n`` for the traceless part H0."""
    op = hamiltonian.simplify(atol=1e-14)
    nonidentity = np.any(op.paulis.x | op.paulis.z, axis=1)
    return float(np.sum(np.abs(op.coeffs[nonidentity]) ** 2))


def two_design_variance(hamiltonian: SparsePauliOp) -> float:
    """Var[dE/dphi] for one rotation exp(-i phi/2 P) sandwiched between two independent unitary 2-designs.

    Derivation (d = 2^n, S = ``hamiltonian_scale``): with rho the (Haar-random) state before the rotation and
    O = U+^dag H U+ the (Haar-conjugated) observable after it, dE/dphi = <psi| A |psi> with A = (i/2)[P, O].
    Haar averages give E<psi|A|psi>^2 = Tr(A^2) / (d (d + 1)) and, using E[O (x) O] for a 2-design,
    E Tr(A^2) = (1/2)(Tr O^2 - E Tr(P O P O)) = d (d Tr H^2 - (Tr H)^2) / (2 (d^2 - 1)). Hence

        Var[dE/dphi] = (d Tr H^2 - (Tr H)^2) / (2 (d^2 - 1)(d + 1)) = d^2 S / (2 (d^2 - 1)(d + 1)),

    about S / (2 d) for large d: the exponential suppression of McClean et al., Nat. Commun. 9, 4812 (2018), eq. 5
    in the convention exp(-i phi P / 2). Tested against Haar-random unitaries in tests/test_barren.py.
    """
    d = 2.0 ** hamiltonian.num_qubits
    return d * d * hamiltonian_scale(hamiltonian) / (2 * (d * d - 1) * (d + 1))


@dataclasses.dataclass(frozen=True)
class _SizeStats:
    n: int
    mean: float
    normalised: float
    log_sigma: float
    ratio: float
    dead_fraction: float
    reported: tuple[float, ...]
    names: tuple[str, ...]


def _size_stats(n: int, circuit: QuantumCircuit, hamiltonian: SparsePauliOp, *, samples: int, seed: int,
                engine: str, settings: BarrenSettings) -> _SizeStats:
    """Angle-unit gradient variances at one size (angles.py: invariant under reparametrising the Parameters)."""
    sim = make_engine(circuit, hamiltonian, engine=engine)
    program = sim.program
    p = program.num_parameters
    rng = np.random.default_rng([seed, n])
    _, raw = sim.energies_and_gradients(sample_parameters(program, rng, samples))
    grads = angle_unit_gradients(program, raw)
    variances = grads.var(axis=0, ddof=1)
    mean = float(variances.mean())
    scale = hamiltonian_scale(hamiltonian)
    normalised = mean / scale if scale > 0 else 0.0
    reference = two_design_variance(hamiltonian)  # per occurrence; g_k is per unit angle step
    ratio = mean / reference if reference > 0 else math.inf
    boot = rng.integers(0, samples, size=(settings.bootstrap, samples))
    boot_means = np.array([grads[rows].var(axis=0, ddof=1).mean() for rows in boot])
    with np.errstate(divide="ignore"):
        log_sigma = float(np.std(np.log(np.maximum(boot_means, 1e-300)))) if mean > 0 else 0.0
    dead = float(np.mean(variances <= settings.vanishing * max(scale, 1e-300))) if p else 1.0
    picks = [0, p // 2, p - 1]
    rest = [k for k in rng.permutation(p) if k not in picks]
    picks = list(dict.fromkeys(picks + rest))[:min(settings.reported_parameters, p)]
    return _SizeStats(n, mean, normalised, log_sigma, ratio, dead, tuple(float(variances[k]) for k in picks),
                      tuple(program.parameters[k].name for k in picks))


def fit_decay(sizes, log_values, log_sigmas) -> tuple[float, float]:
    """Least-squares slope ``b`` of ``log_values = a - b n`` and its standard error.

    The error combines the residual scatter (k - 2 degrees of freedom, when k > 2) with the propagated sampling
    error of each point (``log_sigmas``), added in quadrature.
    """
    x, y, s = (np.asarray(v, dtype=float) for v in (sizes, log_values, log_sigmas))
    dx = x - x.mean()
    sxx = float(np.sum(dx * dx))
    if len(x) < 2 or sxx == 0:
        raise EvaluationError("a decay fit needs at least two different sizes")
    slope = float(np.sum(dx * (y - y.mean())) / sxx)
    residual = y - y.mean() - slope * dx
    var_resid = float(np.sum(residual ** 2) / (len(x) - 2) / sxx) if len(x) > 2 else 0.0
    var_stat = float(np.sum((dx / sxx) ** 2 * s ** 2))
    return -slope, math.sqrt(var_resid + var_stat)


def random_circuit(n: int, layers: int, seed: int = 7) -> QuantumCircuit:
    """McClean et al.'s random circuit: RY(pi/4) on every qubit, then ``layers`` of a random-axis rotation on every
    qubit followed by a CZ brickwork (depth 2 layers + 1)."""
    rng = np.random.default_rng([seed, n])
    qc = QuantumCircuit(n)
    qc.ry(np.pi / 4, range(n))
    theta = [Parameter(f"r{k}") for k in range(n * layers)]
    k = 0
    for layer in range(layers):
        for q in range(n):
            getattr(qc, ("rx", "ry", "rz")[rng.integers(3)])(theta[k], q)
            k += 1
        for q in range(layer % 2, n - 1, 2):
            qc.cz(q, q + 1)
    return qc


_REFERENCE: dict[tuple, float] = {}


def random_reference(goal: Goal, *, samples: int, seed: int, engine: str, settings: BarrenSettings) -> float:
    """The 2-design ratio of a random circuit as deep as the goal's depth limit allows (at most ``RANDOM_LAYERS``
    layers), measured like a candidate's; cached per (Hamiltonian, layers, samples, seed, engine)."""
    layers = max(1, min(RANDOM_LAYERS, (goal.max_depth - 1) // 2))
    op = goal.hamiltonian
    key = (op.num_qubits, op.paulis.x.tobytes(), op.paulis.z.tobytes(), np.asarray(op.coeffs).tobytes(), layers,
           samples, seed, engine)
    if key not in _REFERENCE:
        stats = _size_stats(goal.num_qubits, random_circuit(goal.num_qubits, layers), op, samples=samples,
                            seed=seed, engine=engine, settings=settings)
        _REFERENCE[key] = stats.ratio
    return _REFERENCE[key]


def preload_reference(goal: Goal, *, seed: int, engine: str | None = "auto",
                      settings: BarrenSettings | None = None) -> None:
    """Compute the level rule's random reference for ``goal`` now (in the worker, before the guarded child is
    forked), so every candidate's child inherits it instead of recomputing it (seconds per goal)."""
    settings = settings or BarrenSettings()
    samples = settings.samples
    if goal.num_qubits >= settings.level_min_qubits and samples >= 2:
        with blas_threads():
            random_reference(goal, samples=samples, seed=seed, engine=resolve_engine(engine), settings=settings)


def _usable(circuits: Mapping[int, QuantumCircuit], goal: Goal, size_errors: Mapping[int, str],
            max_qubits: int) -> tuple[dict[int, tuple[QuantumCircuit, Goal]], list[str]]:
    """Circuits that verify at their size and are one family with the goal's (family.py); problems in words."""
    if goal.num_qubits not in circuits:
        raise EvaluationError(f"no circuit at the goal's own size ({goal.num_qubits} qubits)")
    own = circuits[goal.num_qubits]
    check = verify_circuit(own, dataclasses.replace(goal, max_depth=10**9))
    if not check.ok:
        raise EvaluationError(f"the circuit at the goal's size fails verification: {'; '.join(check.errors)}")
    usable = {goal.num_qubits: (own, goal)}
    if not goal.is_lattice:
        return usable, []
    problems = []
    for n in scaling_sizes(goal, max_qubits=max_qubits):
        if n == goal.num_qubits:
            continue
        if n not in circuits:
            problems.append(f"n={n}: {size_errors.get(n) or 'create_ansatz returned no circuit'}")
            continue
        sized = goal.at_size(n)
        # simulability only: the depth limit is the verification stage's business (and other sizes may be deeper)
        check = verify_circuit(circuits[n], dataclasses.replace(sized, max_depth=10**9))
        differences = family_differences(own, circuits[n]) if check.ok else []
        if not check.ok:
            problems.append(f"n={n}: {check.errors[0]}")
        elif differences:
            problems.append(f"n={n} is not the same family as n={goal.num_qubits}: {'; '.join(differences)}")
        else:
            usable[n] = (circuits[n], sized)
    return usable, problems


def check_barren_plateau(circuits: Mapping[int, QuantumCircuit], goal: Goal, *, samples: int | None = None,
                         seed: int = 0, engine: str | None = "auto", settings: BarrenSettings | None = None,
                         size_errors: Mapping[int, str] | None = None) -> BarrenPlateauResult:
    """Gradient-variance check of the ansatz built at each size in ``circuits`` (see the module docstring).

    ``size_errors`` (size -> message) says why the candidate built nothing at an extra size. Verdicts:
    "barren plateau" when the level rule or (lattice goals) the scaling rule flags it or gradients vanish;
    "not measurable" when an extra size is missing, fails verification, is not one family with the goal's
    circuit (family.py) or the fit is not finite (paid like a barren plateau, ``has_barren_plateau`` True);
    otherwise "no barren plateau". ``samples`` overrides ``settings.samples``; no settings: the defaults.
    """
    settings = settings or BarrenSettings()
    samples = settings.samples if samples is None else int(samples)
    engine = resolve_engine(engine)
    if samples < 2:
        raise EvaluationError(f"the barren-plateau check needs at least 2 samples, got {samples}")
    start = time.perf_counter()
    usable, problems = _usable(circuits, goal, size_errors or {}, settings.max_qubits)
    with blas_threads():
        stats = [_size_stats(n, c, g.hamiltonian, samples=samples, seed=seed, engine=engine, settings=settings)
                 for n, (c, g) in sorted(usable.items())]
    own = next(s for s in stats if s.n == goal.num_qubits)
    for s in stats:
        if abs(s.dead_fraction - own.dead_fraction) > DEAD_FRACTION_TOLERANCE:
            problems.append(f"n={s.n} is not the same family as n={own.n}: {s.dead_fraction:.0%} of its Parameters "
                            f"have vanishing gradient variance against {own.dead_fraction:.0%}")
    common = {
        "sizes": tuple(s.n for s in stats), "variances": tuple(s.mean for s in stats),
        "parameter_variances": tuple(s.reported for s in stats), "parameter_names": tuple(s.names for s in stats),
        "normalised_variances": tuple(s.normalised for s in stats), "two_design_ratios": tuple(s.ratio for s in stats),
        "samples": samples, "seed": seed, "engine": engine,
        "method": "scaling" if goal.is_lattice else "two-design", "two_design_variance": two_design_variance(
            goal.hamiltonian)}
    entangling = sum(1 for inst in circuits[goal.num_qubits].data
                     if len(inst.qubits) >= 2 and inst.operation.name != "barrier") / goal.num_qubits
    reference = None
    if entangling >= settings.entangling_per_qubit and own.n >= settings.level_min_qubits:
        with blas_threads():
            reference = random_reference(goal, samples=samples, seed=seed, engine=engine, settings=settings)
    verdict, reason, fit = _decide(stats, own, goal, settings, problems, samples, entangling, reference)
    return BarrenPlateauResult(has_barren_plateau=verdict != "no barren plateau", verdict=verdict, reason=reason,
                               decay_rate=fit[0], decay_rate_stderr=fit[1], seconds=time.perf_counter() - start,
                               **common)


def _decide(stats, own, goal: Goal, settings: BarrenSettings, problems: list[str], samples: int,
            entangling: float, reference: float | None) -> tuple[str, str, tuple[float | None, float | None]]:
    """(verdict, reason in words, (decay rate, its error)) from the per-size statistics."""
    vanished = [s.n for s in stats if s.normalised <= settings.vanishing]
    if vanished:
        return "barren plateau", (f"gradients vanish identically at n = {', '.join(map(str, vanished))}: no "
                                  f"parameter changes the energy at any of {samples} random points"), (None, None)
    deep = entangling >= settings.entangling_per_qubit
    parts = [f"{entangling:.2f} two-qubit gates per qubit ("
             + ("rules apply" if deep else f"below {settings.entangling_per_qubit:g}: too shallow to be flagged")
             + ")"]
    flags = []
    level_on = own.n >= settings.level_min_qubits
    level_flag = reference is not None and own.ratio <= settings.level_factor * reference
    if reference is not None:
        rule = (f"{own.ratio / reference:.3g}x that of a random circuit at the depth limit ({reference:.3g}x); "
                f"flagged at or below {settings.level_factor:g}x")
    else:
        rule = ("not applied to circuits this shallow" if level_on else
                f"not applied below {settings.level_min_qubits} qubits")
    parts.append(f"level rule: at n = {own.n} the mean angle-gradient variance is {own.ratio:.3g}x the unitary "
                 f"2-design level, {rule}" + (" -> barren plateau" if level_flag else " -> not flagged"))
    flags.append(level_flag)
    rate = err = None
    if goal.is_lattice and not problems:
        rate, err = fit_decay([s.n for s in stats], [math.log(s.normalised) for s in stats],
                              [s.log_sigma for s in stats])
        if not (math.isfinite(rate) and math.isfinite(err)):
            problems.append(f"the fitted decay rate is not finite ({rate}, {err})")
        else:
            near = reference is not None and own.ratio <= settings.scaling_factor * reference
            scaling_flag = near and rate > settings.decay_threshold
            flags.append(scaling_flag)
            parts.append(f"scaling rule: Var/sum c^2 decays as exp(-b n) with b = {rate:.3f} +- {err:.3f} per qubit "
                         f"over n = {', '.join(str(s.n) for s in stats)}; flagged above "
                         f"{settings.decay_threshold:.3f} when the level is within {settings.scaling_factor:g}x "
                         f"of the random reference" + (" -> barren plateau" if scaling_flag else " -> not flagged"))
    if any(flags):
        verdict = "barren plateau"
    elif problems:
        verdict = "not measurable"
        parts.append("scaling rule not measurable (" + "; ".join(problems[:3]) + "); paid as a barren plateau")
    else:
        verdict = "no barren plateau"
    return verdict, "; ".join(parts) + f": {verdict}", (rate, err)
