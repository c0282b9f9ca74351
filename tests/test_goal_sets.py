"""Goal sets: one program scored over several Hamiltonians (mean, worst, extrapolation), through the real
sandbox and cascade, the store, `qmind history`, the report and the discovery loop."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest
from sqlalchemy import select
from storehelpers import add_batch, new_run
from test_cli_store import qmind
from test_discovery import run_loop

from db import writes
from db.migrate import upgrade_database
from db.models import Evaluation
from db.session import make_engine, session_scope
from scheduler.baselines import hva_program
from scheduler.history import report_points
from scheduler.report import write_report
from workers.evaluation.cascade import EvaluationConfig, evaluate_code
from workers.evaluation.errors import GoalError
from workers.evaluation.goals import get_goal, goal_from_spec, load_goal_file
from workers.evaluation.results import SCORER_VERSION
from workers.evaluation.rewards import normalised_error
from workers.records import columns

FAST = EvaluationConfig(run_bp=False).with_knobs(bp_samples=30, restarts=1)

# one fixed layer whatever the size: reaches the ground state at no size
SHALLOW = textwrap.dedent("""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    def create_ansatz(num_qubits):
        t = ParameterVector("t", 2 * num_qubits)
        qc = QuantumCircuit(num_qubits)
        for q in range(num_qubits):
            qc.ry(t[q], q)
        for q in range(num_qubits - 1):
            qc.cz(q, q + 1)
        for q in range(num_qubits):
            qc.ry(t[num_qubits + q], q)
        return qc
""")


@pytest.fixture(scope="module")
def shallow_result():
    return evaluate_code(SHALLOW, get_goal("tfim-4+6"), config=FAST)


def test_a_set_name_expands_to_its_members_and_a_held_out_size():
    goal = get_goal("tfim-4+6+8")
    assert [m.name for m in goal.members] == ["tfim-4", "tfim-6", "tfim-8"] and goal.extrapolate_to == 10
    assert goal.num_qubits == 4 and goal.is_lattice and goal.is_set
    assert goal.spec_hash not in {m.spec_hash for m in goal.members} | {get_goal("tfim-4+6").spec_hash}
    again = goal_from_spec(json.loads(json.dumps(goal.to_spec())))
    assert again.spec_hash == goal.spec_hash and [m.name for m in again.members] == ["tfim-4", "tfim-6", "tfim-8"]
    square = get_goal("tfim-2x2+2x3")  # 2D sets grow a row at a time: the held-out size is the 2x4 lattice
    assert [m.name for m in square.members] == ["tfim-2x2", "tfim-2x3"] and square.extrapolate_to == 8
    mixed = get_goal("h2+lih")
    assert mixed.extrapolate_to is None and [m.num_qubits for m in mixed.members] == [4, mixed.members[1].num_qubits]


def test_goal_files_define_sets_and_bad_sets_say_what_is_wrong(tmp_path):
    path = tmp_path / "sets.yaml"
    path.write_text(textwrap.dedent("""
        goals:
          - name: ising-ladder
            members: [tfim-open-4, {name: tfim-open-6b, family: tfim, num_qubits: 6, params: {periodic: false}}]
            extrapolate_to: 12
            max_depth: 40
    """))
    [goal] = load_goal_file(path)
    assert goal.extrapolate_to == 12 and [m.max_depth for m in goal.members] == [40, 40]
    for name, fragment in [("tfim-4+4", "must differ"), ("tfim-4+", "joins goal names"),
                           ("h2+6", "bare size"), ("tfim-4+nope-6", "unknown goal")]:
        with pytest.raises(GoalError, match=fragment):
            get_goal(name)
    path.write_text("name: s\nmembers: [tfim-4, tfim-6]\nextrapolate_to: 6\n")
    with pytest.raises(GoalError, match="above the largest member"):
        load_goal_file(path)
    path.write_text("name: s\nmembers: [h2, lih]\nextrapolate_to: 14\n")
    with pytest.raises(GoalError, match="needs a lattice set"):
        load_goal_file(path)


def test_a_dissociation_curve_is_a_set_of_its_bond_lengths():
    curve = get_goal("h2-curve")
    assert len(curve.members) >= 8 and curve.extrapolate_to is None and curve.num_qubits == 4
    lengths = [float(m.name.rsplit("-", 1)[1]) for m in curve.members]
    assert lengths == sorted(lengths) and len({m.spec_hash for m in curve.members}) == len(lengths)
    assert [m.name for m in get_goal("h2-0.50+1.00+2.50").members] == ["h2-0.50", "h2-1.00", "h2-2.50"]
    with pytest.raises(GoalError, match="curves: h2-curve"):
        get_goal("n2-curve")
    three = get_goal("h2-0.50+1.00+2.50")
    result = evaluate_code(SHALLOW, three, config=FAST)  # one program, three Hamiltonians of the same width
    assert result.status == "valid", result.errors
    eps = {m["name"]: normalised_error(m["error"], get_goal(m["name"])) for m in result.goal_set.members}
    worst = max(eps, key=eps.get)  # worst in units of each member's own gap, not in Hartree
    assert result.goal_set.worst_member == worst and result.goal_set.extrapolation_qubits is None
    assert result.reward.components["normalised_error"] == pytest.approx(eps[worst])
    assert len({m["exact_energy"] for m in result.goal_set.members}) == 3


def test_the_set_pays_its_worst_member_and_reports_the_mean_and_the_extrapolation(shallow_result):
    r = shallow_result
    assert r.status == "valid" and r.stage == "done", r.errors
    rows = {m["name"]: m for m in r.goal_set.members}
    assert set(rows) == {"tfim-4", "tfim-6"}
    assert min(m["error"] for m in rows.values()) > 1e-3  # one fixed layer reaches neither ground state
    worst = max(rows, key=lambda name: normalised_error(rows[name]["error"], get_goal(name)))
    assert r.goal_set.worst_member == worst and r.vqe.error == pytest.approx(rows[worst]["error"])
    assert r.vqe.exact_energy == pytest.approx(get_goal(worst).exact_energy)
    assert r.goal_set.mean_error == pytest.approx((rows["tfim-4"]["error"] + rows["tfim-6"]["error"]) / 2)
    assert r.goal_set.extrapolation_qubits == 8 and r.goal_set.extrapolation_error > 1e-3
    assert r.goal_set.extrapolation_exact_energy == pytest.approx(get_goal("tfim-8").exact_energy)
    # paid as the worst member, normalised by that member's own Hamiltonian
    assert r.reward.seed_reward_literal == pytest.approx(max(0.0, 1 - 10 * r.vqe.error))
    assert r.reward.seed_reward == pytest.approx(max(0.0, 1 - normalised_error(r.vqe.error, get_goal(worst))))


def test_a_size_independent_ansatz_transfers_exactly():
    goal = get_goal("tfim-4+6")
    result = evaluate_code(hva_program(goal), goal, config=FAST)
    assert result.status == "valid" and result.goal_set.worst_error < 1e-6
    assert result.goal_set.extrapolation_error < 1e-6


def test_a_program_that_fails_at_one_member_size_is_invalid_and_told_which():
    code = SHALLOW.replace("def create_ansatz(num_qubits):\n",
                           "def create_ansatz(num_qubits):\n    assert num_qubits < 6, 'only small sizes'\n")
    result = evaluate_code(code, get_goal("tfim-4+6"), config=FAST)
    assert result.status == "invalid" and result.stage == "verify"
    assert "member tfim-6" in result.errors[0] and "only small sizes" in result.errors[0]
    deep = dataclasses.replace(get_goal("tfim-4+6"), max_depth=4)
    assert evaluate_code(SHALLOW, deep, config=FAST).status == "invalid"


def test_the_store_history_and_report_show_the_set_columns(store, shallow_result, tmp_path):
    goal = get_goal("tfim-4+6")
    with session_scope(store) as s:
        goal_id = writes.upsert_goal(s, goal.to_spec(), spec_hash=goal.spec_hash, exact_energy=goal.exact_energy)
        run_id = new_run(s, goal_names=[goal.name])
        add_batch(s, run_id=run_id, goal_id=goal_id, codes=[SHALLOW])
        key = writes.EvaluationKey(writes.code_sha256(SHALLOW), goal_id, SCORER_VERSION)
        writes.record_evaluation(s, key, columns(shallow_result))
        row = s.execute(select(Evaluation)).scalar_one()
        assert row.vqe_error == pytest.approx(shallow_result.goal_set.worst_error)
        assert row.set_mean_error == pytest.approx(shallow_result.goal_set.mean_error)
        assert row.set_extrapolation_qubits == 8
        assert row.set_details["worst_member"] == shallow_result.goal_set.worst_member
        points = report_points(s, run_id, goal_id)
    table = qmind(store, "history", "--goal", "tfim-4+6").stdout
    assert "mean error" in table and "extrap. error" in table
    page = write_report(tmp_path, {"id": run_id}, {goal.name: {"exact_energy": goal.exact_energy, "iterations": 1,
                                                               "points": points}}).read_text()
    assert "extrapolation error" in page and f"{points[0].mean_error:.3e}" in page


def test_the_discovery_loop_runs_on_a_goal_set(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'loop.db'}")  # SQLite only: the store tests cover PostgreSQL
    upgrade_database(engine)
    _, summary = run_loop(engine, ["tfim-4+6"], tmp_path, iterations=1, prompts_per_iteration=1,
                          baselines=False)
    assert summary.status == "completed" and summary.goals[0].goal == "tfim-4+6"
    with session_scope(engine) as s:
        rows = s.execute(select(Evaluation).where(Evaluation.status == "valid")).scalars().all()
    assert rows and all(r.set_mean_error is not None and r.set_details["members"] for r in rows)


def test_the_hardware_stage_of_a_set_measures_the_first_members_circuit_at_its_own_parameters():
    pytest.importorskip("qiskit_ibm_runtime", reason="the hardware stage needs the 'hardware' extra")
    from workers.evaluation.goals.hardware_options import HardwareOptions

    goal = dataclasses.replace(get_goal("tfim-open-4+6"), hardware=HardwareOptions(shots=1000))
    result = evaluate_code(hva_program(goal), goal, config=FAST)
    assert result.status == "valid", result.errors
    assert len(result.hardware.layout) == 4 and result.hardware.noisy_energy is not None
    first = result.goal_set.members[0]
    assert first["name"] == "tfim-open-4" and result.hardware.noisy_error > first["error"]


def test_goals_list_shows_the_set_syntax_and_the_curves():
    from typer.testing import CliRunner

    from scheduler.cli import app as cli_app

    result = CliRunner().invoke(cli_app, ["goals", "list", "--json"])
    assert result.exit_code == 0, result.output
    sets = {r["name"]: r for r in json.loads(result.stdout)["goals"] if r["kind"] == "set"}
    assert {"GOAL+SIZE+...", "h2-curve", "lih-curve"} <= set(sets)
    assert sets["h2-curve"]["hamiltonian"].startswith(f"{len(get_goal('h2-curve').members)} bond lengths")
