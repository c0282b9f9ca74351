"""Barren-plateau check: how the variance of energy gradients scales (McClean et al. 2018; Cerezo et al. 2021).

For each size n the ansatz is built at (``scaling_sizes``), draw ``samples`` parameter vectors uniformly from
[0, 2 pi)^p and compute every exact gradient dE/dtheta_k with the goal's own Hamiltonian at that size
(``goal.at_size(n)``). The summary per size is the mean over all parameters of Var[dE/dtheta_k]; per-parameter
variances are reported for the first, middle and last parameter and a few random ones.

Lattice goals (method ``scaling``): fit ``log(Var / S_n) = a - b n`` by least squares, where
``S_n = sum_P c_P^2`` (identity excluded) is the Hamiltonian's scale, so a Hamiltonian with more terms at larger n
cannot hide a decay. A unitary 2-design gives ``Var / S_n ~ 1 / (2 * 2^n)``, i.e. ``b = ln 2`` per qubit
(McClean et al. 2018). **Criterion:** flag when ``b > ln(2) / 2``: the variance falls at least half as fast (in
the exponent) as for a 2-design. Polynomial decay ``n^-k`` seen over n = 6..10 gives ``b ~ 0.13 k``, below the
threshold for k <= 2.5 (Cerezo et al. 2021: shallow, local circuits with local costs decay at most polynomially).
The standard error combines the fit residuals with the sampling error of each variance (bootstrap).

Fixed-size goals (molecules, explicit Pauli lists; method ``two-design``): compare with the variance a unitary
2-design would give (``two_design_variance``); **criterion:** flag when the measured variance is within a factor
``two_design_factor`` (default 2) of that level, i.e. the ansatz is as untrainable as a random unitary, on at least
``two_design_min_qubits`` (default 6) qubits. Below that the 2-design level is not small (S/34 at 4 qubits: a
random 4-qubit circuit trains fine), so the ratio is reported but never flagged.

Both methods also flag gradients that vanish identically (every sampled derivative zero to rounding).

References: J. R. McClean et al., "Barren plateaus in quantum neural network training landscapes", Nat. Commun.
9, 4812 (2018); M. Cerezo et al., "Cost function dependent barren plateaus in shallow parametrized quantum
circuits", Nat. Commun. 12, 1791 (2021).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from .errors import EvaluationError
from .goals import Goal
from .results import BarrenPlateauResult
from .simulation.engines import blas_threads, make_engine, resolve_engine
from .verify import verify_circuit

DECAY_THRESHOLD = math.log(2) / 2
"""Per-qubit decay rate of the normalised variance above which an ansatz is flagged (half a 2-design's ln 2)."""


@dataclasses.dataclass(frozen=True)
class BarrenSettings:
    """Settings of the barren-plateau check (environment: ``QMIND_BP_<FIELD>``)."""

    max_qubits: int = 12
    """Largest size used for the scaling fit (keeps the check cheap; larger goals are assessed at 8, 10, 12)."""
    decay_threshold: float = DECAY_THRESHOLD
    """Flag lattice ansaetze whose normalised gradient variance decays faster than this per qubit."""
    two_design_factor: float = 2.0
    """Flag fixed-size ansaetze whose variance is within this factor of the unitary 2-design level."""
    two_design_min_qubits: int = 6
    """Below this many qubits the 2-design level itself is not small (S/34 at 4 qubits): never flag, only report."""
    vanishing: float = 1e-14
    """Normalised variance at or below this counts as identically vanishing gradients."""
    reported_parameters: int = 8
    """Per size, how many parameters' variances are reported (first, middle, last, then random)."""
    bootstrap: int = 200
    """Bootstrap resamples for the sampling error of each variance."""

    @classmethod
    def from_env(cls) -> BarrenSettings:
        values = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get(f"QMIND_BP_{field.name.upper()}")
            if raw is not None:
                values[field.name] = type(field.default)(raw)
        return cls(**values)


def scaling_sizes(goal: Goal, *, max_qubits: int | None = None) -> list[int]:
    """Sizes for the scaling fit: the goal's family sizes (``Goal.family_sizes``: n, n-2, n-4 on chains, one column
    less per step on square lattices and ladders, capped at ``max_qubits``). Fixed-size goals: their own size."""
    cap = max_qubits if max_qubits is not None else BarrenSettings.from_env().max_qubits
    return goal.family_sizes(max_qubits=cap)


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
    reported: tuple[float, ...]
    names: tuple[str, ...]


def _size_stats(n: int, circuit: QuantumCircuit, hamiltonian: SparsePauliOp, *, samples: int, seed: int,
                engine: str, settings: BarrenSettings) -> _SizeStats:
    sim = make_engine(circuit, hamiltonian, engine=engine)
    program = sim.program
    p = program.num_parameters
    rng = np.random.default_rng([seed, n])
    thetas = rng.uniform(0.0, 2 * np.pi, size=(samples, p))
    _, grads = sim.energies_and_gradients(thetas)
    variances = grads.var(axis=0, ddof=1)
    mean = float(variances.mean())
    scale = hamiltonian_scale(hamiltonian)
    normalised = mean / scale if scale > 0 else 0.0
    # the 2-design level of each parameter: independent occurrences with coefficients A[j, k] add up
    reference = two_design_variance(hamiltonian) * float(np.sum(program.coefficients ** 2)) / max(p, 1)
    ratio = mean / reference if reference > 0 else math.inf
    boot = rng.integers(0, samples, size=(settings.bootstrap, samples))
    boot_means = np.array([grads[rows].var(axis=0, ddof=1).mean() for rows in boot])
    with np.errstate(divide="ignore"):
        log_sigma = float(np.std(np.log(np.maximum(boot_means, 1e-300)))) if mean > 0 else 0.0
    picks = [0, p // 2, p - 1]
    rest = [k for k in rng.permutation(p) if k not in picks]
    picks = list(dict.fromkeys(picks + rest))[:min(settings.reported_parameters, p)]
    return _SizeStats(n, mean, normalised, log_sigma, ratio, tuple(float(variances[k]) for k in picks),
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


def check_barren_plateau(circuits: Mapping[int, QuantumCircuit], goal: Goal, *, samples: int = 200, seed: int = 0,
                         engine: str | None = "auto", settings: BarrenSettings | None = None) -> BarrenPlateauResult:
    """Gradient-variance check of the ansatz built at each size in ``circuits`` (at least the goal's own size).

    Every circuit is re-verified (width, gates, angles; not depth, which the verification stage checks): the goal's
    own size must pass, other sizes are skipped when they fail; with fewer than two sizes left the check falls back
    to the 2-design comparison.
    """
    settings = settings or BarrenSettings.from_env()
    engine = resolve_engine(engine)
    if samples < 2:
        raise EvaluationError(f"the barren-plateau check needs at least 2 samples, got {samples}")
    if goal.num_qubits not in circuits:
        raise EvaluationError(f"no circuit at the goal's own size ({goal.num_qubits} qubits)")
    start = time.perf_counter()
    usable: dict[int, tuple[QuantumCircuit, Goal]] = {}
    skipped: list[str] = []
    for n in sorted(circuits):
        if n != goal.num_qubits and not goal.is_lattice:
            continue
        sized = goal if n == goal.num_qubits else goal.at_size(n)
        # simulability only: the depth limit is the verification stage's business (and other sizes may be deeper)
        check = verify_circuit(circuits[n], dataclasses.replace(sized, max_depth=10**9))
        if check.ok:
            usable[n] = (circuits[n], sized)
        elif n == goal.num_qubits:
            raise EvaluationError(f"the circuit at the goal's size fails verification: {'; '.join(check.errors)}")
        else:
            skipped.append(f"n={n} skipped ({check.errors[0]})")
    with blas_threads():
        stats = [_size_stats(n, c, g.hamiltonian, samples=samples, seed=seed, engine=engine, settings=settings)
                 for n, (c, g) in sorted(usable.items())]
    own = next(s for s in stats if s.n == goal.num_qubits)
    common = {
        "sizes": tuple(s.n for s in stats), "variances": tuple(s.mean for s in stats),
        "parameter_variances": tuple(s.reported for s in stats), "parameter_names": tuple(s.names for s in stats),
        "normalised_variances": tuple(s.normalised for s in stats), "two_design_ratios": tuple(s.ratio for s in stats),
        "samples": samples, "seed": seed, "engine": engine}
    note = f" ({'; '.join(skipped)})" if skipped else ""
    vanished = [s.n for s in stats if s.normalised <= settings.vanishing]
    if vanished:
        return BarrenPlateauResult(
            has_barren_plateau=True, method="scaling" if len(stats) > 1 else "two-design", **common,
            verdict="barren plateau",
            seconds=time.perf_counter() - start,
            reason=f"gradients vanish identically at n = {', '.join(map(str, vanished))}: no parameter changes "
                   f"the energy at any of {samples} random points{note}")
    if goal.is_lattice and len(stats) >= 2:
        rate, err = fit_decay([s.n for s in stats], [math.log(s.normalised) for s in stats],
                              [s.log_sigma for s in stats])
        flagged = rate > settings.decay_threshold
        verdict = "barren plateau" if flagged else "no barren plateau"
        reason = (f"Var[dE/dtheta] / sum c^2 decays as exp(-b n) with b = {rate:.3f} +- {err:.3f} per qubit over "
                  f"n = {', '.join(str(s.n) for s in stats)} (threshold {settings.decay_threshold:.3f}, half a "
                  f"unitary 2-design's ln 2); at n = {own.n} the variance is {own.ratio:.3g}x the 2-design "
                  f"level: {verdict}{note}")
        return BarrenPlateauResult(has_barren_plateau=flagged, method="scaling", decay_rate=rate, verdict=verdict,
                                   decay_rate_stderr=err, seconds=time.perf_counter() - start, reason=reason,
                                   **common)
    level = two_design_variance(goal.hamiltonian)
    small = own.n < settings.two_design_min_qubits
    flagged = own.ratio <= settings.two_design_factor and not small
    rule = (f"below {settings.two_design_min_qubits} qubits even a 2-design's gradients are not small, so it is "
            f"never flagged" if small else f"flagged within a factor {settings.two_design_factor:g}")
    reason = (f"mean Var[dE/dtheta] = {own.mean:.4g} is {own.ratio:.3g}x the level of a unitary 2-design for this "
              f"Hamiltonian (per-gate {level:.4g}); {rule}: "
              f"{'barren plateau' if flagged else 'no barren plateau'}{note}")
    return BarrenPlateauResult(has_barren_plateau=flagged, method="two-design", two_design_variance=level,
                               verdict="barren plateau" if flagged else "no barren plateau",
                               seconds=time.perf_counter() - start, reason=reason, **common)
