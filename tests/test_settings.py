"""The scoring settings tree: read from the environment once, at the edge (workers/settings.py), one name per
knob, old names still honoured with a warning, and a pure function called without settings uses the defaults and
never reads the environment."""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from db.config import StoreConfig
from scheduler.baselines import hva_program
from tests.ansatz_library import h2_ansatz
from workers.config import QueueConfig
from workers.evaluation.barren import BarrenSettings, scaling_sizes
from workers.evaluation.cascade import EvaluationConfig, evaluate_code
from workers.evaluation.errors import SandboxError
from workers.evaluation.goals import get_goal
from workers.evaluation.guard import TrustedConfig
from workers.evaluation.sandbox import SandboxConfig, isolation_status
from workers.evaluation.vqe import VQESettings, score_vqe
from workers.settings import (
    BRANCHES,
    DEPRECATED,
    knob_names,
    sandbox_settings,
    scoring_settings,
    trusted_settings,
)

CORE = pathlib.Path(__file__).resolve().parents[1] / "workers" / "evaluation"


def _leaves(cls: type, path: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        nested = dataclasses.is_dataclass(f.default_factory) if f.default_factory is not dataclasses.MISSING \
            else False
        out += _leaves(f.default_factory, f"{path}{f.name}.") if nested else [path + f.name]
    return out


def test_every_knob_of_the_tree_has_exactly_one_variable():
    names = knob_names()
    assert sorted(names.values()) == sorted(_leaves(EvaluationConfig))  # every leaf, each once
    assert names["QMIND_ENGINE"] == "engine" and names["QMIND_VQE_RESTARTS"] == "vqe.restarts"
    assert names["QMIND_BP_SAMPLES"] == "barren.samples" and "QMIND_VQE_ENGINE" not in names
    others = {f"QMIND_{f.upper()}" for f in (*QueueConfig.model_fields, *StoreConfig.model_fields)}
    assert not set(names) & others, "a scoring knob shares its variable with the queue or the store"
    assert not set(DEPRECATED) & set(names) and set(DEPRECATED.values()) <= set(names)


def test_the_tree_reads_each_branch_from_its_own_prefix():
    tree = scoring_settings({
        "QMIND_SANDBOX_WALL_SECONDS": "5", "QMIND_SANDBOX_MEMORY_BYTES": "512M", "QMIND_SANDBOX_CPU_SECONDS": "none",
        "QMIND_SANDBOX_EXTRA_READ_PATHS": "/opt/a:/opt/b", "QMIND_TRUSTED_MEMORY_BYTES": "2G",
        "QMIND_TRUSTED_SCORE_SECONDS": "90", "QMIND_BP_SAMPLES": "17", "QMIND_BP_MAX_QUBITS": "8",
        "QMIND_VQE_RESTARTS": "2", "QMIND_VQE_MAX_SECONDS": "12.5", "QMIND_ENGINE": "aer", "QMIND_RUN_VQE": "no",
        "QMIND_SANDBOX_PYTHON": "  ",  # blank: the default
    })
    assert (tree.sandbox.wall_seconds, tree.sandbox.memory_bytes, tree.sandbox.cpu_seconds) == (5.0, 512 << 20, None)
    assert tree.sandbox.extra_read_paths == ("/opt/a", "/opt/b") and tree.sandbox.python == ""
    assert (tree.trusted.memory_bytes, tree.trusted.score_seconds) == (2 << 30, 90.0)
    assert (tree.barren.samples, tree.barren.max_qubits, tree.vqe.restarts, tree.vqe.max_seconds) == (17, 8, 2, 12.5)
    assert tree.engine == "aer" and tree.run_vqe is False and tree.run_bp is True
    assert scoring_settings({}) == EvaluationConfig()
    assert sandbox_settings({"QMIND_SANDBOX_WALL_SECONDS": "5"}, max_output_bytes=4096) == SandboxConfig(
        wall_seconds=5.0, max_output_bytes=4096)
    assert trusted_settings({"QMIND_TRUSTED_VERIFY_SECONDS": "7"}) == TrustedConfig(verify_seconds=7.0)
    assert set(BRANCHES) == {"sandbox", "trusted", "barren", "vqe"}


@pytest.mark.parametrize(("env", "error", "fragment"), [
    ({"QMIND_SANDBOX_MEMORY_BYTES": "lots"}, SandboxError, "QMIND_SANDBOX_MEMORY_BYTES='lots' is not valid"),
    ({"QMIND_SANDBOX_ISOLATION": "docker"}, SandboxError, "isolation must be one of"),
    ({"QMIND_SANDBOX_WALL_SECONDS": "0"}, SandboxError, "wall_seconds must be > 0"),
    ({"QMIND_SANDBOX_MAX_PROCESSES": "1"}, SandboxError, "max_processes must be >= 2"),
    ({"QMIND_TRUSTED_VERIFY_SECONDS": "soon"}, ValueError, "QMIND_TRUSTED_VERIFY_SECONDS='soon'"),
    ({"QMIND_VQE_RESTARTS": "four"}, ValueError, "QMIND_VQE_RESTARTS='four' is not valid"),
    ({"QMIND_RUN_BP": "maybe"}, ValueError, "QMIND_RUN_BP='maybe' is not valid: expected one of 1, true"),
])
def test_a_bad_setting_is_named_in_the_error(env, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        scoring_settings(env)


def test_the_old_engine_name_still_works_and_warns_naming_the_new_one():
    with pytest.warns(DeprecationWarning, match="QMIND_VQE_ENGINE is deprecated: set QMIND_ENGINE instead"):
        tree = scoring_settings({"QMIND_VQE_ENGINE": "aer"})
    assert tree.engine == "aer"
    with pytest.warns(DeprecationWarning, match="QMIND_ENGINE is set and wins"):
        tree = scoring_settings({"QMIND_VQE_ENGINE": "aer", "QMIND_ENGINE": "statevector"})
    assert tree.engine == "statevector"


def test_vqe_without_settings_ignores_the_environment_which_the_edge_honours(monkeypatch):
    monkeypatch.setenv("QMIND_VQE_RESTARTS", "2")
    monkeypatch.setenv("QMIND_ENGINE", "aer")
    default = score_vqe(h2_ansatz(), get_goal("h2"))
    assert (default.restarts, default.engine) == (VQESettings().restarts, "statevector")
    tree = scoring_settings()
    edge = score_vqe(h2_ansatz(), get_goal("h2"), settings=tree.vqe, engine=tree.engine)
    assert (edge.restarts, edge.engine) == (2, "aer")


def test_sizes_and_the_sandbox_without_settings_ignore_the_environment(monkeypatch):
    monkeypatch.setenv("QMIND_BP_MAX_QUBITS", "6")
    monkeypatch.setenv("QMIND_SANDBOX_BWRAP_PATH", "/nonexistent/bwrap")
    goal = get_goal("tfim-10")
    assert scaling_sizes(goal) == goal.family_sizes(max_qubits=BarrenSettings().max_qubits) == [6, 8, 10]
    assert scaling_sizes(goal, max_qubits=scoring_settings().barren.max_qubits) == [4, 6, 8]
    assert "/nonexistent/bwrap" not in isolation_status().bwrap_reason
    assert "/nonexistent/bwrap" in isolation_status(sandbox_settings()).bwrap_reason


def test_the_cascade_passes_the_edge_engine_and_samples_to_the_barren_plateau_check_and_vqe(monkeypatch):
    monkeypatch.setenv("QMIND_ENGINE", "aer")
    monkeypatch.setenv("QMIND_BP_SAMPLES", "12")
    monkeypatch.setenv("QMIND_VQE_RESTARTS", "1")
    goal = get_goal("tfim-4")
    result = evaluate_code(hva_program(goal), goal, config=scoring_settings())
    assert result.status == "valid", result.errors
    assert (result.bp.engine, result.bp.samples, result.vqe.engine, result.vqe.restarts) == ("aer", 12, "aer", 1)


def test_the_evaluation_core_reads_no_scoring_variable():
    """Only workers/settings.py turns variables into settings: no knob name, no from_env in the pure core."""
    knobs = set(knob_names()) | set(DEPRECATED)
    for path in CORE.rglob("*.py"):
        text = path.read_text()
        assert "from_env" not in text, path
        assert not [k for k in knobs if re.search(rf"environ[^\n]*{k}\b", text)], path


def test_qmind_evaluate_reads_the_knobs_at_its_edge_and_its_flags_win(tmp_path):
    code = tmp_path / "hva.py"
    code.write_text(hva_program(get_goal("tfim-4")))
    env = {**os.environ, "QMIND_VQE_RESTARTS": "2", "QMIND_BP_SAMPLES": "24", "QMIND_ENGINE": "aer"}
    argv = [sys.executable, "-m", "scheduler.cli", "evaluate", "--goal", "tfim-4", "--code-file", str(code), "--json"]
    for extra, restarts, samples in (([], 2, 24), (["--restarts", "1", "--bp-samples", "20"], 1, 20)):
        proc = subprocess.run(argv + extra, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert (out["vqe"]["restarts"], out["bp"]["samples"], out["vqe"]["engine"]) == (restarts, samples, "aer")
