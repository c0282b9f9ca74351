"""The hardware stage on baseline ansätze: routed two-qubit gates and depth on fake_sherbrooke, the noisy energy's
error and the stage's wall time (docs/scoring.md, "Hardware stage").

    python benchmarks/hardware_stage.py tfim-open-6 h2 tfim-6 heisenberg-open-8

Per goal: the HVA baseline when the goal has one, else the first baseline; VQE with one restart (seed 0), then
``score_hardware`` at the VQE's best parameters with the default options (4,000 shots, 60 s budget).
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import sys
import time

from scheduler.baselines import baseline_programs
from workers.evaluation.cascade import EvaluationConfig, prepare
from workers.evaluation.goals import get_goal
from workers.evaluation.hardware import load_backend, score_hardware
from workers.evaluation.vqe import score_vqe


def main(names: list[str]) -> None:
    t = time.perf_counter()
    load_backend("fake_sherbrooke")
    print(f"backend load {time.perf_counter() - t:.1f} s", flush=True)
    for name in names:
        goal = get_goal(name)
        programs = dict(baseline_programs(goal))
        label = next((k for k in programs if "hva" in k.lower()), next(iter(programs)))
        prepared = prepare(programs[label], goal, config=EvaluationConfig(run_bp=False))
        vqe = score_vqe(prepared.circuit, goal, restarts=1)
        t = time.perf_counter()
        hw = score_hardware(prepared.circuit, goal, vqe.best_parameters, seed=0)
        seconds = time.perf_counter() - t
        noisy = (f"not measured: {hw.not_measured}" if hw.noisy_error is None
                 else f"{hw.noisy_error:.4f} +- {hw.noisy_stderr:.4f}")
        print(f"{name} {label}: 2q {prepared.verification.num_two_qubit_gates} -> {hw.routed_two_qubit_gates}, "
              f"routed depth {hw.routed_depth}, active qubits {hw.active_qubits}, VQE error {vqe.error:.1e}, "
              f"noisy error {noisy}, {hw.groups} groups, {hw.method or '-'}, stage {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["tfim-open-6", "h2"])
