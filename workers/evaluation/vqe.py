"""VQE scoring: minimise the goal's energy over the circuit's parameters with exact gradients.

Optimizer: SciPy's L-BFGS-B with ``jac=True``; every objective call needs the energy and the full exact gradient
(adjoint differentiation, or parameter shifts through one broadcast Estimator call with the Aer engine).
Restarts: restart r uses ``numpy.random.default_rng(seed + r)``; restart 0 starts from small angles U(-0.1, 0.1)
(near the identity, Grant et al. 2019), the others uniformly in [0, 2 pi). The restarts run in lockstep
(``lbfgsb.py``, in one thread; ``lockstep.py``, in threads, where SciPy lacks the routine ``lbfgsb.py`` drives):
each round of their requests is one batched engine call, so four restarts cost about one.

Trust: the best parameters' energy is recomputed independently with ``qiskit.quantum_info.Statevector`` on the
circuit as built (not on the compiled program). A disagreement beyond rounding is a scorer bug and raises
``EvaluationError`` (the cascade stores an error, never a reward). An energy below the exact ground energy by more
than rounding sets ``below_exact``: with a correct simulator no circuit can do that, so it is a bug or an exploit,
and the cascade stores it as ``flagged``, never rewarded.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector
from scipy.optimize import minimize

from . import lbfgsb
from .errors import EvaluationError
from .goals import CHEMICAL_ACCURACY, Goal
from .results import VQEResult
from .simulation.engines import blas_threads, make_engine, resolve_engine
from .simulation.lockstep import Lockstep, run_restarts

OPTIMIZER = "L-BFGS-B"
ROUNDING = 1e-9
"""Relative rounding tolerance (times sum |c_P| of the Hamiltonian) for below-exact and self-check comparisons."""


@dataclasses.dataclass(frozen=True)
class VQESettings:
    """Settings of VQE scoring (read from ``QMIND_VQE_<FIELD>`` at the edge: ``workers/settings.py``). The simulator
    is not one of them: the cascade's ``engine`` serves the barren-plateau check and VQE alike."""

    restarts: int = 4
    """Seeded random restarts; the best energy over all of them is reported."""
    maxiter: int = 1000
    """L-BFGS-B iterations per restart."""
    ftol: float = 1e-12
    """L-BFGS-B relative energy-change tolerance (about 1e-11 absolute on a 10-site chain)."""
    gtol: float = 1e-6
    """L-BFGS-B projected-gradient tolerance (energy error ~ gtol^2 / curvature near a minimum)."""
    tol: float = 1e-5
    """A restart 'reached the best' when its energy is within this (energy units) of the best."""
    small_init: float = 0.1
    """Restart 0 starts from U(-small_init, small_init); the others from U(0, 2 pi)."""
    max_seconds: float = 600.0
    """Time budget for all restarts; past it the best energy so far is reported with ``truncated``."""


class _OutOfTime(Exception):
    pass


def initial_point(num_parameters: int, restart: int, seed: int, *, small: float = 0.1) -> np.ndarray:
    """The documented start of restart ``restart`` (shared with the benchmark's baseline)."""
    rng = np.random.default_rng(seed + restart)
    if restart == 0:
        return rng.uniform(-small, small, num_parameters)
    return rng.uniform(0.0, 2 * np.pi, num_parameters)


def independent_energy(circuit: QuantumCircuit, goal: Goal, parameters: np.ndarray) -> float:
    """The energy of ``circuit`` at ``parameters`` (``circuit.parameters`` order) from Qiskit's own Statevector."""
    try:
        bound = circuit.assign_parameters(list(map(float, parameters)))
        bound.global_phase = 0.0
        state = Statevector(bound)
        return float(np.real(state.expectation_value(goal.hamiltonian)))
    except Exception as exc:
        raise EvaluationError(f"independent energy check failed: {exc}") from exc


def _record(best: dict, theta: np.ndarray, energy: float, grad: np.ndarray) -> None:
    """Refuse non-finite engine output; keep the lowest energy and its parameters."""
    if not (np.isfinite(energy) and np.all(np.isfinite(grad))):
        raise EvaluationError("the simulator returned a non-finite energy or gradient")
    if energy < best["energy"]:
        best.update(energy=float(energy), theta=np.array(theta, dtype=float))


def _in_rounds(sim, starts: list[np.ndarray], options: dict, deadline: float, evaluations: list[int],
               bests: list[dict], truncated: list[bool]) -> None:
    """Every restart's L-BFGS-B in one thread (``lbfgsb.Restart``): each round of their requested points is one
    batched engine call, in restart order, exactly the rounds the lockstep threads would form."""
    try:
        runs = [lbfgsb.Restart(x0, **options) for x0 in starts]
        points = [run.ask() for run in runs]
        active = [r for r, x in enumerate(points) if x is not None]
        while active:
            if time.perf_counter() > deadline and all(evaluations[r] for r in active):
                for r in active:
                    truncated[r] = True
                return
            rows = np.stack([points[r] for r in active])
            energies, grads = sim.energies_and_gradients(rows)
            for i, r in enumerate(active):
                evaluations[r] += 1
                _record(bests[r], rows[i], energies[i], grads[i])
                runs[r].tell(energies[i], grads[i])
                points[r] = runs[r].ask()
            active = [r for r in active if points[r] is not None]
    except EvaluationError:
        raise
    except Exception as exc:
        raise EvaluationError(f"the optimizer failed: {exc}") from exc


def score_vqe(circuit: QuantumCircuit, goal: Goal, *, restarts: int | None = None, seed: int = 0,
              maxiter: int | None = None, tol: float | None = None, engine: str | None = None,
              settings: VQESettings | None = None) -> VQEResult:
    """Minimise ``goal``'s energy over ``circuit``'s parameters; keyword options override ``settings`` (no settings:
    the defaults, never the environment). ``engine``: auto (= statevector), statevector or aer."""
    with blas_threads():
        return _score_vqe(circuit, goal, restarts=restarts, seed=seed, maxiter=maxiter, tol=tol, engine=engine,
                          settings=settings)


def _score_vqe(circuit, goal, *, restarts, seed, maxiter, tol, engine, settings) -> VQEResult:
    settings = settings or VQESettings()
    restarts = settings.restarts if restarts is None else int(restarts)
    maxiter = settings.maxiter if maxiter is None else int(maxiter)
    tol = settings.tol if tol is None else float(tol)
    if restarts < 1 or maxiter < 1:
        raise EvaluationError(f"restarts and maxiter must be positive, got {restarts} and {maxiter}")
    start = time.perf_counter()
    sim = make_engine(circuit, goal.hamiltonian, engine=resolve_engine(engine))
    p = sim.program.num_parameters
    evaluations = [0] * restarts
    bests: list[dict] = [{"energy": math.inf, "theta": None} for _ in range(restarts)]
    truncated = [False] * restarts
    options = {"maxiter": maxiter, "maxfun": 4 * maxiter, "ftol": settings.ftol, "gtol": settings.gtol}

    def work(r: int, lockstep: Lockstep) -> None:
        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            if evaluations[r] and time.perf_counter() - start > settings.max_seconds:
                raise _OutOfTime
            evaluations[r] += 1
            energy, grad = lockstep.request(r, theta)
            _record(bests[r], theta, energy, grad)
            return energy, grad

        x0 = initial_point(p, r, seed, small=settings.small_init)
        try:
            if p == 0:
                objective(x0)
            else:
                minimize(objective, x0, jac=True, method=OPTIMIZER, options=options)
        except _OutOfTime:
            truncated[r] = True
        except EvaluationError:
            raise
        except Exception as exc:
            raise EvaluationError(f"the optimizer failed: {exc}") from exc

    if p and lbfgsb.available():
        starts = [initial_point(p, r, seed, small=settings.small_init) for r in range(restarts)]
        _in_rounds(sim, starts, options, start + settings.max_seconds, evaluations, bests, truncated)
    else:
        run_restarts(restarts, work, sim.energies_and_gradients)
    return _result(circuit, goal, sim, bests, evaluations=sum(evaluations), truncated=any(truncated), seed=seed,
                   tol=tol, start=start, budget=settings.max_seconds)


def _result(circuit: QuantumCircuit, goal: Goal, sim, bests: list[dict], *, evaluations: int, truncated: bool,
            seed: int, tol: float, start: float, budget: float) -> VQEResult:
    """The best restart's energy, checked independently with Qiskit's Statevector, as a ``VQEResult``."""
    done = [r for r in range(len(bests)) if bests[r]["theta"] is not None]
    if not done:
        raise EvaluationError(f"no energy was evaluated within the time budget of {budget:g} s")
    restart_energies = [bests[r]["energy"] for r in done]
    overall = bests[min(done, key=lambda r: bests[r]["energy"])]

    exact = goal.exact_energy
    scale = float(np.sum(np.abs(goal.hamiltonian.coeffs)))
    rounding = ROUNDING * max(1.0, scale)
    energy = overall["energy"]
    check = independent_energy(circuit, goal, overall["theta"])
    if abs(check - energy) > rounding:
        raise EvaluationError(f"scorer self-check failed: the {sim.name} engine gives {energy:.12f} but Qiskit's "
                              f"Statevector gives {check:.12f} for the same parameters")
    below = min(energy, check) < exact - rounding
    error = energy - exact
    reached = sum(1 for e in restart_energies if e <= energy + tol)
    return VQEResult(
        energy=energy, exact_energy=exact, error=error,
        relative_error=error / abs(exact) if exact else error,
        chemical_accuracy=(error <= CHEMICAL_ACCURACY) if goal.is_molecule else None,
        below_exact=bool(below), evaluations=evaluations, gradient_evaluations=evaluations,
        seconds=time.perf_counter() - start, restarts=len(done), seeds=tuple(seed + r for r in done),
        success_fraction=reached / len(restart_energies), optimizer=OPTIMIZER,
        best_parameters=tuple(float(x) for x in overall["theta"]), restart_energies=tuple(restart_energies),
        engine=sim.name, circuit_executions=int(sim.executions), check_energy=check, truncated=truncated)
