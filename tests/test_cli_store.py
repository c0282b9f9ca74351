"""``qmind history`` and ``qmind sql`` on SQLite and PostgreSQL (through the real CLI process)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from storehelpers import add_batch, add_goal, new_run, verdict
from typer.testing import CliRunner

from db import writes
from db.session import session_scope
from scheduler.cli import app as cli_app
from workers.records import columns

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOOD = "def create_ansatz(n):\n    return 'good'\n"
BETTER = "def create_ansatz(n):\n    return 'better'\n"


def qmind(engine, *args: str):
    """The CLI in-process (Typer's runner); one test below runs the real process."""
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli_app, list(args), env={"QMIND_DATABASE_URL": url, "COLUMNS": "200"})
    result.returncode = result.exit_code
    return result


@pytest.fixture
def filled(store):
    with session_scope(store) as s:
        goal_id = add_goal(s, "tfim-4")
        run_id = new_run(s)
        add_batch(s, run_id=run_id, goal_id=goal_id, codes=[GOOD, BETTER, None])
        writes.record_evaluation(s, writes.EvaluationKey(writes.code_sha256(GOOD), goal_id, "v1"),
                                 columns(verdict(error=0.2)))
        writes.record_evaluation(s, writes.EvaluationKey(writes.code_sha256(BETTER), goal_id, "v1"),
                                 columns(verdict(error=0.003)))
    return store


def test_history_lists_the_best_candidates_first_as_json(filled):
    result = qmind(filled, "history", "--goal", "tfim-4", "--top", "5", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["goal"] == "tfim-4" and [c["code"] for c in out["candidates"]] == [BETTER, GOOD]
    assert out["candidates"][0]["vqe_error"] == pytest.approx(0.003) and out["candidates"][0]["temperature"] == 0.7


def test_history_prints_a_table_and_the_code_on_request(filled):
    result = qmind(filled, "history", "--goal", "tfim-4", "--top", "1", "--code")
    assert result.returncode == 0, result.stderr
    assert "best candidates for tfim-4" in result.stdout and "0.003" in result.stdout
    assert "return 'better'" in result.stdout and "return 'good'" not in result.stdout


def test_history_of_an_unknown_goal_says_which_goals_exist(filled):
    result = qmind(filled, "history", "--goal", "h2", "--json")
    assert result.returncode == 2 and "tfim-4" in json.loads(result.stdout)["error"]


def test_sql_prints_one_json_object_with_columns_and_rows(filled):
    result = qmind(filled, "sql", "SELECT goal_name, rank, vqe_error FROM best_candidates ORDER BY rank", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["columns"] == ["goal_name", "rank", "vqe_error"]
    assert out["rows"] == [["tfim-4", 1, 0.003], ["tfim-4", 2, 0.2]] and out["truncated"] is False


def test_sql_shows_a_table_from_the_real_command(filled):
    url = filled.url.render_as_string(hide_password=False)
    result = subprocess.run([sys.executable, "-m", "scheduler.cli", "sql",
                             "SELECT model_version, temperature, pass_rate FROM pass_rates"], cwd=ROOT,
                            check=False, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "QMIND_DATABASE_URL": url, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "pass_rate" in result.stdout and "row(s)" in result.stdout


def test_sql_refuses_a_write_with_a_clear_message_and_changes_nothing(filled):
    result = qmind(filled, "sql", "DELETE FROM evaluations")
    assert result.returncode == 2 and "read-only SELECT" in result.stderr
    hidden = qmind(filled, "sql", "WITH x AS (SELECT 1) DELETE FROM evaluations", "--json")
    assert hidden.returncode == 1 and "read" in json.loads(hidden.stdout)["error"].lower()
    count = qmind(filled, "sql", "SELECT COUNT(*) AS n FROM evaluations", "--json")
    assert json.loads(count.stdout)["rows"] == [[2]]


def test_sql_on_a_missing_sqlite_file_says_how_to_create_it(tmp_path):
    result = subprocess.run([sys.executable, "-m", "scheduler.cli", "sql", "SELECT 1", "--url",
                             f"sqlite:///{tmp_path / 'none.db'}"], cwd=ROOT, check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "qmind db upgrade" in result.stderr
    assert not (tmp_path / "none.db").exists()
