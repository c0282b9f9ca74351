"""The hardware stage's results in the store, `qmind history`, the run report and `qmind evaluate --hardware`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from storehelpers import add_batch, add_goal, new_run, verdict
from test_cli_store import qmind
from typer.testing import CliRunner

from db import writes
from db.models import Evaluation
from db.session import session_scope
from scheduler.baselines import hva_program
from scheduler.cli import app as cli_app
from scheduler.history import report_points
from scheduler.report import write_report
from workers.evaluation.goals import get_goal
from workers.evaluation.results import SCORER_VERSION
from workers.records import columns

pytest.importorskip("qiskit_ibm_runtime", reason="the hardware stage needs the 'hardware' extra")

from test_hardware import ladder

from workers.evaluation.hardware import score_hardware

CODES = ["def create_ansatz(n):\n    return 'a'\n", "def create_ansatz(n):\n    return 'b'\n"]


@pytest.fixture(scope="module")
def hardware_payloads():
    """Two real hardware results on tfim-4: a measured chain and a ring whose noisy energy was not measured."""
    goal = get_goal("tfim-4")
    chain = score_hardware(ladder(4), goal, np.linspace(0.1, 0.8, 8), seed=1).to_dict()
    ring = score_hardware(ladder(4, ring=True), goal, None, seed=1).to_dict()
    return chain, ring


def _store_two(store, hardware_payloads):
    with session_scope(store) as s:
        goal_id = add_goal(s, "tfim-4")
        run_id = new_run(s)
        add_batch(s, run_id=run_id, goal_id=goal_id, codes=CODES)
        for code, hw, error in zip(CODES, hardware_payloads, (0.01, 0.002)):
            payload = {**verdict(error=error), "hardware": hw}
            writes.record_evaluation(s, writes.EvaluationKey(writes.code_sha256(code), goal_id, SCORER_VERSION),
                                     columns(payload))
    return run_id, goal_id


def test_hardware_columns_are_stored_and_shown_by_history(store, hardware_payloads):
    _store_two(store, hardware_payloads)
    chain, ring = hardware_payloads
    with session_scope(store) as s:
        rows = {r.code_sha256: r for r in s.execute(select(Evaluation)).scalars()}
    measured = rows[writes.code_sha256(CODES[0])]
    assert measured.hw_backend == "fake_sherbrooke" and measured.hw_two_qubit_gates == chain["routed_two_qubit_gates"]
    assert measured.hw_noisy_energy == pytest.approx(chain["noisy_energy"]) and measured.hw_shots == 4000
    assert measured.hw_details["layout"] == chain["layout"]
    unmeasured = rows[writes.code_sha256(CODES[1])]
    assert unmeasured.hw_noisy_energy is None and "VQE did not run" in unmeasured.hw_details["not_measured"]
    out = json.loads(qmind(store, "history", "--goal", "tfim-4", "--json").stdout)
    assert [c["hw_two_qubit_gates"] for c in out["candidates"]] == [ring["routed_two_qubit_gates"],
                                                                    chain["routed_two_qubit_gates"]]
    table = qmind(store, "history", "--goal", "tfim-4").stdout
    assert "routed 2q" in table and "noisy error" in table


def test_the_report_draws_error_against_routed_two_qubit_gates(store, hardware_payloads, tmp_path):
    run_id, goal_id = _store_two(store, hardware_payloads)
    with session_scope(store) as s:
        points = report_points(s, run_id, goal_id)
    assert sorted(p.routed_two_qubit_gates for p in points) == sorted(
        h["routed_two_qubit_gates"] for h in hardware_payloads)
    page = write_report(tmp_path, {"id": run_id}, {"tfim-4": {"exact_energy": -4.0, "iterations": 1,
                                                              "points": points}})
    assert (tmp_path / "tfim-4-hardware-pareto.png").stat().st_size > 1000
    assert "tfim-4-hardware-pareto.png" in page.read_text()


def test_qmind_evaluate_hardware_prints_the_routed_cost_and_noisy_energy(tmp_path):
    code = tmp_path / "hva.py"
    code.write_text(hva_program(get_goal("tfim-4")))
    result = CliRunner().invoke(cli_app, ["evaluate", "--goal", "tfim-4", "--code-file", str(code), "--json",
                                          "--restarts", "1", "--bp-samples", "20", "--hardware",
                                          "--hardware-shots", "1000"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    hw = out["hardware"]
    assert out["status"] == "valid" and hw["shots"] == 1000 and hw["noisy_stderr"] > 0
    assert hw["noisy_error"] > out["vqe"]["error"]
    bad = CliRunner().invoke(cli_app, ["evaluate", "--goal", "tfim-4", "--code-file", str(code), "--json",
                                       "--hardware", "--hardware-shots", "5"])
    assert bad.exit_code == 2 and "hardware.shots" in bad.stdout
