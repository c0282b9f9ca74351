"""The statevector engine's cost per evaluation beside a lower bound measured on the same machine.

Run from the repository root:  python benchmarks/bound.py [--json] [--repeats 15]

One *evaluation* is an energy and its full gradient for one parameter vector. The lower bound is what any adjoint
method must spend: one H psi and three passes over the gates (forward psi, backward psi, backward mu), each in its
fastest form measured here:

- H psi: the faster of SciPy's CSR product (all rows of the batch in one call) and the compiled CSR kernel;
- a pass of the gates: the compiled forward kernel, one in-place pass over the state per gate (for a rotation a
  2 x 2 mix of amplitude pairs, for a diagonal gate one multiply of the entries that change, for CX a swap).

The engine is timed end to end through ``StatevectorEngine.energies_and_gradients`` (angles, half-angle factors,
buffers, the compiled call, the chain rule), at batch 1 and at the VQE's lockstep batch (one row per restart).
Times are the minimum over ``repeats`` calls (engine and bound parts measured round-robin) of the calling thread's CPU time (``time.thread_time``): on a shared
machine wall-clock time also counts the time other processes hold the core; CPU time does not, and the minimum
filters out most of the remaining noise (cache thrashing by neighbours).
"""

from __future__ import annotations

try:
    import _path  # noqa: F401  (first, run as a script: puts the repo root on sys.path, see benchmarks/_path.py)
except ImportError:  # imported as benchmarks.bound (by scoring.py): the root is already on sys.path
    pass

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import time

import numpy as np
from qiskit.circuit.library import efficient_su2

from tests.ansatz_library import hea_ry_rz
from workers.evaluation.goals import get_goal
from workers.evaluation.simulation import jit
from workers.evaluation.simulation.block import half_angle_factors
from workers.evaluation.simulation.engines import blas_threads, make_engine

CASES = [
    ("lih", "EfficientSU2 reps 2", lambda: efficient_su2(12, reps=2)),
    ("lih", "RY+RZ + CZ chain, 4 layers", lambda: hea_ry_rz(12, 4)),
    ("tfim-10", "RY+RZ + CZ chain, 10 layers", lambda: hea_ry_rz(10, 10)),
]
LOCKSTEP_BATCH = 4
"""The VQE's default restarts, all evaluated in one call per round."""


def best_seconds(calls: dict, repeats: int) -> dict:
    """Minimum CPU seconds of each callable, measured round-robin so all see the same machine conditions."""
    for call in calls.values():
        call()  # warm-up (compilation, caches)
    times: dict = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.thread_time()
            call()
            times[name].append(time.thread_time() - start)
    return {name: min(values) for name, values in times.items()}


def engine_and_bound(engine, batch: int, repeats: int, seed: int = 0) -> dict:
    """Seconds per row: the engine end to end, one H psi (compiled or SciPy), one compiled pass of the gates, and
    the bound H + 3 passes."""
    kernel = engine._gates
    thetas = np.random.default_rng(seed).uniform(0, 2 * np.pi, (batch, engine.program.num_parameters))
    cos, sin = half_angle_factors(engine.program.angles(thetas))
    tape = kernel.tape
    psi, mu, energy = kernel._buffers(batch)
    h, psi_t = engine.hamiltonian, np.empty((kernel.dim, batch), dtype=complex)
    t = best_seconds({
        "engine": lambda: engine.energies_and_gradients(thetas),
        "gates": lambda: jit.forward(tape.ops, tape.ipool, tape.cpool, cos, sin, psi, kernel.dim),
        "compiled_h": lambda: jit.hamiltonian(*kernel.csr, psi, mu, energy, kernel.dim),
        "scipy_h": lambda: h @ psi_t,
    }, repeats)
    h_best = min(t["compiled_h"], t["scipy_h"])
    bound = h_best + 3 * t["gates"]
    return {"engine": t["engine"] / batch, "gates_pass": t["gates"] / batch, "h_psi": h_best / batch,
            "bound": bound / batch, "h_psi_compiled": t["compiled_h"] / batch, "h_psi_scipy": t["scipy_h"] / batch,
            "ratio": t["engine"] / bound}


def measure_case(goal_name: str, label: str, circuit, *, repeats: int) -> dict:
    goal = get_goal(goal_name)
    engine = make_engine(circuit, goal.hamiltonian, kernel="compiled")
    row = {"goal": goal_name, "ansatz": label, "qubits": circuit.num_qubits, "parameters": circuit.num_parameters,
           "gates": len(engine.program.ops)}
    with blas_threads(1):  # as while scoring
        for batch in (1, LOCKSTEP_BATCH):
            row[f"batch{batch}"] = engine_and_bound(engine, batch, repeats)
    return row


class EngineClock:
    """Counts the CPU and wall time spent inside ``StatevectorEngine.energies_and_gradients`` while active."""

    def __enter__(self):
        from workers.evaluation.simulation.statevector import StatevectorEngine

        self.cpu = self.wall = 0.0
        self.rows = self.calls = 0
        self._cls, self._original = StatevectorEngine, StatevectorEngine.energies_and_gradients
        clock = self

        def timed(engine, thetas):
            wall, cpu = time.perf_counter(), time.thread_time()
            out = clock._original(engine, thetas)
            clock.cpu += time.thread_time() - cpu
            clock.wall += time.perf_counter() - wall
            clock.rows, clock.calls = clock.rows + len(thetas), clock.calls + 1
            return out

        StatevectorEngine.energies_and_gradients = timed
        return self

    def __exit__(self, *exc):
        self._cls.energies_and_gradients = self._original


def vqe_overhead(goal_name: str, label: str, circuit, *, engine_per_eval: float, restarts: int = LOCKSTEP_BATCH,
                 seed: int = 0) -> dict:
    """The whole VQE (score_vqe) against the engine: seconds per evaluation, and time outside the engine."""
    from workers.evaluation.vqe import score_vqe

    goal = get_goal(goal_name)
    _ = goal.exact_energy
    with EngineClock() as clock:
        cpu = time.process_time()
        result = score_vqe(circuit, goal, restarts=restarts, seed=seed)
        cpu = time.process_time() - cpu
    per_eval = cpu / result.evaluations
    return {"goal": goal_name, "ansatz": label, "parameters": circuit.num_parameters, "restarts": restarts,
            "evaluations": result.evaluations, "rounds": clock.calls, "seconds": result.seconds, "cpu_seconds": cpu,
            "engine_cpu_seconds": clock.cpu, "cpu_per_eval": per_eval, "engine_per_eval": engine_per_eval,
            "ratio_to_engine": per_eval / engine_per_eval, "outside_engine": cpu / clock.cpu, "error": result.error}


def cascade_seconds(goal_name: str = "lih", baseline: str = "EfficientSU2-r2", seed: int = 0) -> dict:
    """The whole cascade (sandbox, verify, BP check, VQE, rewards) of a baseline program, wall and CPU time."""
    from scheduler.baselines import baseline_programs
    from workers.evaluation.cascade import evaluate_code

    goal = get_goal(goal_name)
    _ = goal.exact_energy
    code = dict(baseline_programs(goal))[baseline]
    wall, cpu = time.perf_counter(), _cpu_with_children()
    result = evaluate_code(code, goal, seed=seed)
    return {"goal": goal_name, "program": baseline, "status": result.status, "seconds": time.perf_counter() - wall,
            "cpu_seconds": _cpu_with_children() - cpu, "timings": result.timings}


def _cpu_with_children() -> float:
    """CPU seconds of this process and of its finished children (the sandbox, a scoring subprocess)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def print_rows(rows: list[dict]) -> None:
    print(f"{'goal':8s} {'ansatz':28s} {'params':>6s} {'batch':>5s} {'engine ms':>9s} {'bound ms':>8s} "
          f"{'ratio':>5s}   (H psi ms, gate pass ms)")
    for r in rows:
        for batch in (1, LOCKSTEP_BATCH):
            m = r[f"batch{batch}"]
            print(f"{r['goal']:8s} {r['ansatz']:28s} {r['parameters']:6d} {batch:5d} {1e3 * m['engine']:9.3f} "
                  f"{1e3 * m['bound']:8.3f} {m['ratio']:5.2f}   ({1e3 * m['h_psi']:.3f}, {1e3 * m['gates_pass']:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rows = [measure_case(g, label, build(), repeats=args.repeats) for g, label, build in CASES]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_rows(rows)


if __name__ == "__main__":
    main()
