"""Side-by-side: the project's VQE scorer against a straightforward tutorial-style one, and the BP-check timing.

Run from the repository root:  python benchmarks/scoring.py [--json] [--with-aer-engine] [--restarts 4]
[--skip-baseline] [--skip-engine]

First (``--skip-engine`` leaves it out) the engine against its lower bound (``bound.py``): cost per evaluation at
batch 1 and at the lockstep batch beside one H psi + three gate passes, for LiH (12 qubits) and tfim-10 with 200
parameters; then the whole VQE's CPU seconds per evaluation against the engine's, and the whole cascade of
EfficientSU2 reps 2 on LiH. Then (``--skip-baseline`` leaves it out) the comparison below.

For every (goal, ansatz) case both scorers get the same circuit, the same number of restarts and the same
starting points (``workers.evaluation.vqe.initial_point``: restart 0 near the identity, the others uniform):

- **project**: ``score_vqe`` (L-BFGS-B, exact gradients, default engine = batched adjoint statevector);
- **baseline**: COBYLA with 300 iterations, one ``qiskit_aer.primitives.EstimatorV2`` call per energy
  (exact, ``default_precision=0``), as most VQE tutorials do;
- optionally (``--with-aer-engine``) the project's scorer on its Aer engine (one broadcast Estimator call of
  parameter shifts per gradient).

Everything runs on one core (OMP/OpenBLAS/MKL threads = 1, Aer ``max_parallel_threads=1``). Exact ground energies
are computed (and cached) before timing. Also times the barren-plateau check of a 10-qubit, 80-parameter ansatz
(sizes 6, 8, 10; 200 samples each). Not a test: timings depend on the machine.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import platform
import statistics
import time


from benchmarks.bound import CASES as ENGINE_CASES
from benchmarks.bound import LOCKSTEP_BATCH, cascade_seconds, measure_case, print_rows, vqe_overhead
from scipy.optimize import minimize

from tests.ansatz_library import h2_hardware_efficient, hea_ry_rz, heisenberg_hva, ry_cz, tfim_hva
from workers.evaluation.barren import check_barren_plateau, scaling_sizes
from workers.evaluation.goals import get_goal
from workers.evaluation.vqe import initial_point, score_vqe

ALL_GATES = "rx,ry,rz,h,x,cx,cz,rzz,rxx,ryy"
CASES = [
    ("tfim-6", "HVA p=3", lambda: tfim_hva(6)),
    ("tfim-8", "RY+CZ 2 layers", lambda: ry_cz(8, 2)),
    ("heisenberg-6", "HVA-like p=3", lambda: heisenberg_hva(6)),
    ("h2", "hardware-efficient RY+CX 2 layers", lambda: h2_hardware_efficient(2)),
]
COBYLA_ITERATIONS = 300


def baseline_vqe(circuit, goal, *, restarts: int, seed: int) -> dict:
    """COBYLA, 300 iterations, one EstimatorV2 call per energy evaluation; same starts as the project's scorer."""
    from qiskit_aer.primitives import EstimatorV2

    start = time.perf_counter()
    estimator = EstimatorV2(options={"default_precision": 0.0,
                                     "backend_options": {"method": "statevector", "max_parallel_threads": 1}})
    calls = 0

    def energy(theta):
        nonlocal calls
        calls += 1
        return float(estimator.run([(circuit, goal.hamiltonian, theta)]).result()[0].data.evs)

    energies = []
    for r in range(restarts):
        x0 = initial_point(circuit.num_parameters, r, seed)
        result = minimize(energy, x0, method="COBYLA", options={"maxiter": COBYLA_ITERATIONS})
        energies.append(float(result.fun))
    best = min(energies)
    return {"energy": best, "error": best - goal.exact_energy, "seconds": time.perf_counter() - start,
            "evaluations": calls, "restart_energies": energies}


def project_vqe(circuit, goal, *, restarts: int, seed: int, engine: str = "auto") -> dict:
    result = score_vqe(circuit, goal, restarts=restarts, seed=seed, engine=engine)
    return {"energy": result.energy, "error": result.error, "seconds": result.seconds,
            "evaluations": result.evaluations, "circuit_executions": result.circuit_executions,
            "success_fraction": result.success_fraction, "engine": result.engine}


def bp_timing(repeats: int = 3, engine: str = "auto") -> dict:
    goal = get_goal("tfim-10")
    sizes = scaling_sizes(goal)
    circuits = {n: hea_ry_rz(n, 4) for n in sizes}
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = check_barren_plateau(circuits, goal, samples=200, seed=0, engine=engine)
        times.append(time.perf_counter() - start)
    return {"goal": goal.name, "ansatz": "RY+RZ per qubit + CZ chain, 4 layers", "sizes": sizes,
            "parameters_at_goal_size": circuits[goal.num_qubits].num_parameters, "samples": 200,
            "engine": result.engine, "seconds_min": min(times), "seconds_median": statistics.median(times),
            "has_barren_plateau": result.has_barren_plateau, "decay_rate": result.decay_rate,
            "decay_rate_stderr": result.decay_rate_stderr}


def engine_section(*, quiet: bool, repeats: int = 30) -> dict:
    """Engine vs lower bound, whole VQE vs engine, and the LiH EfficientSU2 cascade (see the module docstring)."""
    rows = [measure_case(g, label, build(), repeats=repeats) for g, label, build in ENGINE_CASES]
    if not quiet:
        print("engine cost per evaluation (CPU ms, min of 30) against the lower bound H psi + 3 gate passes:")
        print_rows(rows)
    overhead = [vqe_overhead(g, label, build(), engine_per_eval=row[f"batch{LOCKSTEP_BATCH}"]["engine"])
                for (g, label, build), row in zip(ENGINE_CASES, rows)]
    cascade = cascade_seconds()
    if not quiet:
        print("\nwhole VQE (4 restarts in lockstep) against the engine, CPU time:")
        for o in overhead:
            inside = o["engine_cpu_seconds"] / o["evaluations"]
            print(f"{o['goal']:8s} {o['ansatz']:28s} {o['evaluations']:5d} evals {o['cpu_seconds']:6.2f}s "
                  f"({o['seconds']:6.2f}s wall)  VQE {1e3 * o['cpu_per_eval']:.3f} ms/eval, inside the engine "
                  f"{1e3 * inside:.3f} ms/eval: {o['outside_engine']:.2f}x  (engine's isolated best case at batch "
                  f"{LOCKSTEP_BATCH}: {1e3 * o['engine_per_eval']:.3f} ms/eval, {o['ratio_to_engine']:.2f}x)")
        print(f"\ncascade {cascade['program']} on {cascade['goal']}: {cascade['seconds']:.2f}s wall, "
              f"{cascade['cpu_seconds']:.2f}s CPU (this process and its children), status {cascade['status']}, "
              f"stages {cascade['timings']}\n", flush=True)
    return {"bound": rows, "vqe_overhead": overhead, "cascade": cascade}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--restarts", type=int, default=4, help="restarts for both scorers (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--with-aer-engine", action="store_true",
                        help="also time the project's scorer on its Aer engine (slow)")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out the baseline comparison (slow)")
    parser.add_argument("--skip-engine", action="store_true", help="leave out the engine/bound/overhead section")
    args = parser.parse_args()
    engine = {} if args.skip_engine else engine_section(quiet=args.json)
    rows = []
    for goal_name, label, build in [] if args.skip_baseline else CASES:
        goal = get_goal(goal_name, allowed_gates=ALL_GATES)
        _ = goal.exact_energy  # computed and cached before timing
        circuit = build()
        row = {"goal": goal_name, "ansatz": label, "qubits": circuit.num_qubits,
               "parameters": circuit.num_parameters, "exact_energy": goal.exact_energy,
               "project": project_vqe(circuit, goal, restarts=args.restarts, seed=args.seed),
               "baseline": baseline_vqe(circuit, goal, restarts=args.restarts, seed=args.seed)}
        if args.with_aer_engine:
            row["project_aer"] = project_vqe(circuit, goal, restarts=args.restarts, seed=args.seed, engine="aer")
        row["speedup"] = row["baseline"]["seconds"] / row["project"]["seconds"]
        row["error_not_worse"] = row["project"]["error"] <= row["baseline"]["error"] + 1e-9
        rows.append(row)
        if not args.json:
            p, b = row["project"], row["baseline"]
            extra = f"  aer-engine {row['project_aer']['seconds']:7.2f}s" if args.with_aer_engine else ""
            print(f"{goal_name:13s} {label:34s} project {p['seconds']:7.3f}s err {p['error']:9.2e} | "
                  f"baseline {b['seconds']:7.2f}s err {b['error']:9.2e} | {row['speedup']:6.1f}x{extra}",
                  flush=True)
    bp = bp_timing()
    report = {"engine": engine,"machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                          "threads": 1, "note": "shared development machine; re-measure on a quiet one"},
              "restarts": args.restarts, "seed": args.seed, "cobyla_iterations": COBYLA_ITERATIONS,
              "cases": rows, "barren_plateau_check": bp}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"\nbarren-plateau check, {bp['goal']}, {bp['parameters_at_goal_size']} parameters at n = "
          f"{bp['sizes'][-1]}, sizes {bp['sizes']}, {bp['samples']} samples: {bp['seconds_min']:.2f}s "
          f"(median {bp['seconds_median']:.2f}s), one core; flagged: {bp['has_barren_plateau']}")
    if not rows:
        return
    slowest = min(r["speedup"] for r in rows)
    print(f"smallest speed-up {slowest:.1f}x; project error <= baseline error in "
          f"{sum(r['error_not_worse'] for r in rows)}/{len(rows)} cases")


if __name__ == "__main__":
    main()
