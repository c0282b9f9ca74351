"""Calibration of the barren-plateau verdict (workers/evaluation/barren.py) over a documented set of ansaetze.

Run from the repository root (one core):
    python benchmarks/bp_calibration.py --quick          # a few minutes: the goals and classes of docs/scoring.md
    python benchmarks/bp_calibration.py [--json]         # every goal and class below (tens of minutes)

For every goal and ansatz class the circuit is built at the sizes the check uses (``scaling_sizes``) and passed
to ``check_barren_plateau`` with the current settings; the table reports the level ratio (mean angle-gradient
variance / unitary 2-design level at the goal's size), the fitted decay rate b (lattice goals) and the verdict.
The confusion table counts, per expected label, how many were flagged:

- expected "barren plateau": random circuits (random-axis rotations + CZ brickwork, McClean et al. 2018) of 16
  or more layers;
- expected "no barren plateau": the Hamiltonian-variational ansatz (lattices), RealAmplitudes / EfficientSU2
  with reps <= 2, 1-2 layer local RY+CZ circuits, and the double-excitation circuit on h2;
- reported only: random circuits of 4 and 8 layers, RealAmplitudes / EfficientSU2 with reps 3-4, Givens
  brickworks (particle-conserving, from the Neel / Hartree-Fock state).

The goals get a larger gate set (rxx, ryy, xx_plus_yy) so every class can be built; the depth limit is the goal's
(50), which the random circuits of 24 layers reach. Not part of the test suite.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import dataclasses
import json
import time

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import XXPlusYYGate

from tests.ansatz_library import deep_random, h2_ansatz, heisenberg_hva, ry_cz, tfim_hva
from workers.evaluation.barren import check_barren_plateau, scaling_sizes
from workers.settings import scoring_settings
from workers.evaluation.goals import get_goal
from workers.evaluation.reference import _best_basis_state, _codes

GATES = ("rx", "ry", "rz", "h", "x", "cx", "cz", "rzz", "rxx", "ryy", "xx_plus_yy")


def hea(n: int, reps: int, su2: bool) -> QuantumCircuit:
    """RealAmplitudes (RY) or EfficientSU2 (RY + RZ) with a linear CX chain, ``reps`` repetitions + final layer."""
    per = 2 if su2 else 1
    theta = ParameterVector("t", per * n * (reps + 1))
    qc, k = QuantumCircuit(n), 0
    for rep in range(reps + 1):
        for q in range(n):
            qc.ry(theta[k], q)
            if su2:
                qc.rz(theta[k + 1], q)
            k += per
        if rep < reps:
            for q in range(n - 1):
                qc.cx(q, q + 1)
    return qc


def givens(n: int, occupied: list[int], layers: int) -> QuantumCircuit:
    """X on ``occupied``, then ``layers`` brickwork layers of Givens rotations (xx_plus_yy), one Parameter each."""
    qc = QuantumCircuit(n)
    qc.x(occupied)
    k = 0
    theta = ParameterVector("g", layers * (n - 1))
    for layer in range(layers):
        for q in range(layer % 2, n - 1, 2):
            qc.append(XXPlusYYGate(theta[k], 0.0), [q, q + 1])
            k += 1
    return qc


def classes(goal) -> dict[str, tuple[str, object]]:
    """label -> (expected verdict or 'report', builder n -> circuit)."""
    out: dict[str, tuple[str, object]] = {}
    for layers in (4, 8, 16, 24):
        out[f"random {layers} layers"] = ("barren plateau" if layers >= 16 else "report",
                                          lambda n, L=layers: deep_random(n, L))
    for reps in (1, 2, 3, 4):
        for su2 in (False, True):
            name = ("EfficientSU2" if su2 else "RealAmplitudes") + f" reps {reps}"
            out[name] = ("no barren plateau" if reps <= 2 else "report", lambda n, r=reps, s=su2: hea(n, r, s))
    for layers in (1, 2):
        out[f"local RY+CZ {layers} layer(s)"] = ("no barren plateau", lambda n, L=layers: ry_cz(n, L))
    if goal.is_lattice:
        if goal.family == "tfim":
            out["HVA"] = ("no barren plateau", tfim_hva)
        else:
            out["HVA"] = ("no barren plateau", heisenberg_hva)
        out["Givens from Neel, n/2 layers"] = ("report", lambda n: givens(n, list(range(0, n, 2)), max(1, n // 2)))
    else:
        op = goal.hamiltonian.simplify()
        bits = _best_basis_state(_codes(op), op.coeffs.real)[1]
        occupied = [q for q, b in enumerate(bits) if b]
        if goal.name == "h2":
            out["double excitation (UCC)"] = ("no barren plateau", lambda n: h2_ansatz())
        out["Givens from HF, 2 layers"] = ("report", lambda n, o=occupied: givens(n, o, 2))
        out["Givens from HF, n/2 layers"] = ("report", lambda n, o=occupied: givens(n, o, max(1, n // 2)))
    return out


def run(goals: list[str], samples: int, only: set[str] | None) -> list[dict]:
    settings = scoring_settings().barren  # QMIND_BP_* (thresholds under calibration), read once here
    rows = []
    for name in goals:
        goal = dataclasses.replace(get_goal(name), allowed_gates=GATES)
        for label, (expected, build) in classes(goal).items():
            if only and label not in only:
                continue
            circuits = {n: build(n) for n in scaling_sizes(goal, max_qubits=settings.max_qubits)}
            if circuits[goal.num_qubits].depth() > goal.max_depth:
                continue
            start = time.perf_counter()
            bp = check_barren_plateau(circuits, goal, samples=samples, seed=0, settings=settings)
            row = {"goal": name, "ansatz": label, "expected": expected, "verdict": bp.verdict,
                   "ratio": bp.two_design_ratios[bp.sizes.index(goal.num_qubits)], "decay_rate": bp.decay_rate,
                   "depth": circuits[goal.num_qubits].depth(), "seconds": round(time.perf_counter() - start, 2)}
            rows.append(row)
            rate = "" if row["decay_rate"] is None else f"{row['decay_rate']:.2f}"
            print(f"{name:14s} {label:32s} depth {row['depth']:3d} ratio {row['ratio']:9.3g} b {rate:>6s} "
                  f"{bp.verdict:18s} (expected {expected}) {row['seconds']} s", flush=True)
    return rows


def confusion(rows: list[dict]) -> str:
    lines = ["| expected | goals ≥ 8 qubits: flagged / total | 6 qubits: flagged / total | < 6 qubits |",
             "| --- | --- | --- | --- |"]
    for expected in ("barren plateau", "no barren plateau"):
        cells = []
        for test in (lambda n: n >= 8, lambda n: n == 6, lambda n: n < 6):
            group = [r for r in rows if r["expected"] == expected and test(get_goal(r["goal"]).num_qubits)]
            flagged = sum(r["verdict"] != "no barren plateau" for r in group)
            cells.append(f"{flagged} / {len(group)}")
        lines.append(f"| {expected} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


QUICK_GOALS = ["tfim-6", "tfim-8", "heisenberg-8", "h2", "lih"]
FULL_GOALS = ["tfim-6", "tfim-8", "tfim-10", "tfim-12", "tfim-open-8", "heisenberg-8", "xxz-8", "xy-8", "xy-10",
              "h2", "lih"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer goals and 100 samples (a few minutes)")
    parser.add_argument("--samples", type=int, default=None, help="samples per size (default 200, quick 100)")
    parser.add_argument("--goals", default=None, help="comma-separated goal names (overrides the set)")
    parser.add_argument("--only", default=None, help="comma-separated ansatz labels to run")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    args = parser.parse_args()
    goals = args.goals.split(",") if args.goals else (QUICK_GOALS if args.quick else FULL_GOALS)
    samples = args.samples or (100 if args.quick else 200)
    only = set(args.only.split(",")) if args.only else None
    start = time.perf_counter()
    rows = run(goals, samples, only)
    print(f"\n{len(rows)} cases, {samples} samples per size, {time.perf_counter() - start:.0f} s\n")
    print(confusion(rows))
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
