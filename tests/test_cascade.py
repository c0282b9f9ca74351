"""The whole cascade (sandbox -> verify -> BP -> VQE -> reward) and the `qmind evaluate` contract."""

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest

from scheduler.baselines import baseline_programs, hva_program
from workers.evaluation.cascade import EvaluationConfig, evaluate_code, prepare, score
from workers.evaluation.goals import get_goal
from workers.evaluation.sandbox import SandboxConfig

FAST = EvaluationConfig().with_knobs(bp_samples=60, restarts=2)


def test_hva_reaches_the_exact_tfim_energy_through_the_whole_cascade():
    goal = get_goal("tfim-4")
    result = evaluate_code(hva_program(goal), goal)
    assert result.status == "valid" and result.stage == "done"
    assert result.vqe.error < 1e-6
    assert result.bp.has_barren_plateau is False
    assert result.reward.seed_reward == pytest.approx(1.0, abs=1e-5)
    assert result.fingerprint and result.fingerprint.startswith("n:")


@pytest.mark.parametrize("name", ["xy-6", "xxz-6"])
def test_singlet_hva_baselines_reach_the_exact_energy(name):
    goal = get_goal(name)
    result = evaluate_code(hva_program(goal), goal, config=FAST)
    assert result.status == "valid" and result.vqe.error < 1e-6


@pytest.mark.parametrize("name", ["tfim-5", "heisenberg-open-4", "xy-4", "h2"])
def test_every_baseline_program_passes_verification(name):
    goal = get_goal(name)
    config = dataclasses.replace(FAST, run_bp=False, run_vqe=False)
    programs = baseline_programs(goal)
    assert len(programs) == (7 if goal.is_lattice else 6)
    for label, code in programs:
        result = evaluate_code(code, goal, config=config)
        assert result.status == "valid", (label, result.errors)


def test_a_candidate_that_patches_numpy_and_qiskit_cannot_fake_its_energy():
    goal = get_goal("tfim-4")
    honest = hva_program(goal)
    cheat = textwrap.dedent("""
        import numpy, qiskit, scipy.optimize
        from qiskit.quantum_info import Statevector, SparsePauliOp
        numpy.linalg.eigvalsh = lambda *a, **k: numpy.array([1e9])
        Statevector.expectation_value = lambda self, op, qargs=None: -1e6
        SparsePauliOp.to_matrix = lambda self, *a, **k: None
        scipy.optimize.minimize = lambda *a, **k: None
    """) + honest
    a = evaluate_code(honest, goal, config=FAST)
    b = evaluate_code(cheat, goal, config=FAST)
    assert b.status == "valid"
    assert b.vqe.energy == pytest.approx(a.vqe.energy, abs=1e-9)
    assert b.vqe.exact_energy == pytest.approx(goal.exact_energy)
    assert a.fingerprint == b.fingerprint


@pytest.mark.parametrize("code,status,fragment", [
    ("def create_ansatz(n):\n    while True:\n        pass\n", "timeout", ""),
    ("def create_ansatz(n):\n    return 42\n", "error", "QuantumCircuit"),
    ("x = = 1\n", "error", "SyntaxError"),
    ("from qiskit import QuantumCircuit\ndef create_ansatz(n):\n    return QuantumCircuit(n + 1)\n",
     "invalid", "expected 4"),
    (("from qiskit import QuantumCircuit\ndef create_ansatz(n):\n    qc = QuantumCircuit(n)\n    qc.h(0)\n"
      "    return qc\n"), "invalid", "Parameter"),
    ("", "error", "no code"),
])
def test_failures_stop_the_cascade_with_a_status_and_a_message(code, status, fragment):
    # the CPU limit stops the loop; the wall limit leaves room for a slow interpreter start on a loaded machine
    config = dataclasses.replace(FAST, sandbox=SandboxConfig(wall_seconds=30, cpu_seconds=3))
    result = evaluate_code(code, get_goal("tfim-4"), config=config)
    assert result.status == status
    assert result.vqe is None and result.reward.seed_reward == 0.0
    assert fragment in " ".join(result.errors)


def test_prepare_then_score_equals_evaluate_code():
    goal = get_goal("tfim-4")
    prepared = prepare(hva_program(goal), goal, config=FAST)
    assert prepared.result is None and set(prepared.circuits) >= {4}
    assert score(prepared, config=FAST).vqe.energy == pytest.approx(
        evaluate_code(hva_program(goal), goal, config=FAST).vqe.energy, abs=1e-9)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_qmind_evaluate_json_contract(tmp_path):
    code = tmp_path / "hva.py"
    code.write_text(hva_program(get_goal("tfim-4")))
    proc = run_cli("evaluate", "--goal", "tfim-4", "--code-file", str(code), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert out["status"] == "valid" and out["errors"] == []
    for key in ("depth", "num_parameters", "gate_counts", "bp", "vqe", "reward"):
        assert key in out
    assert set(out["bp"]) >= {"has_barren_plateau", "variances", "decay_rate"}
    assert set(out["vqe"]) >= {"energy", "exact_energy", "error", "evaluations", "seconds"}
    assert out["vqe"]["error"] < 1e-6


def test_qmind_evaluate_judges_bad_candidates_with_exit_code_zero(tmp_path):
    code = tmp_path / "bad.py"
    code.write_text("from qiskit import QuantumCircuit\nfrom qiskit.circuit import Parameter\n"
                    "def create_ansatz(n):\n    qc = QuantumCircuit(n)\n    qc.swap(0, 1)\n"
                    "    qc.ry(Parameter('t'), 0)\n    return qc\n")
    proc = run_cli("evaluate", "--goal", "tfim-4", "--code-file", str(code), "--allowed-gates", "ry,cz", "--json")
    assert proc.returncode == 0
    out = json.loads(proc.stdout)
    assert out["status"] == "invalid" and any("swap" in e for e in out["errors"])


@pytest.mark.parametrize("args,fragment", [
    (["--goal", "tfim-99", "--code-file", "x.py"], "between 3 and 20"),
    (["--goal", "nonsense", "--code-file", "x.py"], "unknown goal"),
    (["--goal", "tfim-4", "--code-file", "/nonexistent/x.py"], "cannot read --code-file"),
    (["--goal", "tfim-4", "--code-file", "x.py", "--allowed-gates", "ry,warp"], "unknown gate"),
])
def test_qmind_evaluate_usage_errors_exit_2_with_a_message(args, fragment):
    proc = run_cli("evaluate", *args, "--json")
    assert proc.returncode == 2
    assert fragment in json.loads(proc.stdout)["error"]
