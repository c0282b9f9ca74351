"""The discovery loop in eager mode (wiring, resume, de-duplication, search quality) and `qmind discover`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select
from storehelpers import pg_database, store  # noqa: F401  (fixtures)

from db.models import Candidate, Evaluation, GenerationBatch, Run
from db.session import session_scope, store_label
from scheduler import history
from scheduler.baselines import hva_program
from scheduler.loop import DiscoveryConfig, DiscoveryLoop
from scheduler.progress import LoopProgress
from workers.evaluation.goals import get_goal
from workers.submit import evaluate_candidates

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST_ENV = {"QMIND_BP_SAMPLES": "60", "QMIND_VQE_RESTARTS": "2"}


@pytest.fixture(autouse=True)
def fast_scoring(monkeypatch):
    for k, v in FAST_ENV.items():
        monkeypatch.setenv(k, v)


@contextlib.contextmanager
def eager(url: str):
    """The Celery app in eager mode, writing to ``url``."""
    from workers.app import app, configure
    from workers.config import QueueConfig

    configure(app, QueueConfig(broker_url="", database_url=url))
    try:
        yield app
    finally:
        configure(app, QueueConfig(broker_url="", database_url="sqlite:///qmind.db"))


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def run_loop(engine, goals, tmp_path, **settings):
    config = DiscoveryConfig(report_root=str(tmp_path / "reports"), **settings)
    loop = DiscoveryLoop([get_goal(g) for g in goals], config, engine=engine)
    with eager(url_of(engine)):
        return loop, loop.run()


def test_a_short_discovery_runs_end_to_end_in_eager_mode(store, tmp_path):
    loop, summary = run_loop(store, ["tfim-4"], tmp_path, iterations=2, prompts_per_iteration=1)
    assert summary.status == "completed" and summary.iterations_done == 2
    with session_scope(store) as s:
        batches = s.execute(select(GenerationBatch.iteration, GenerationBatch.generator, GenerationBatch.memory_context)
                            .where(GenerationBatch.run_id == loop.run_id).order_by(GenerationBatch.iteration)).all()
        assert [(b.iteration, b.generator) for b in batches] == [(-1, "baseline"), (0, "procedural"),
                                                                 (1, "procedural")]
        # what iteration 0 learned is in iteration 1's prompt
        assert "No candidates evaluated yet" in batches[1].memory_context
        assert "Best ansätze so far" in batches[2].memory_context
        codes = s.execute(select(Candidate.code_sha256).join(GenerationBatch)
                          .where(GenerationBatch.run_id == loop.run_id, Candidate.code_sha256.is_not(None))).scalars()
        evaluated = s.execute(select(func.count(Evaluation.id)).where(Evaluation.code_sha256.in_(set(codes)),
                                                                      Evaluation.status != "pending")).scalar_one()
        assert evaluated == len({c for c in s.execute(select(Candidate.code_sha256).join(GenerationBatch).where(
            GenerationBatch.run_id == loop.run_id, Candidate.code_sha256.is_not(None))).scalars()})
        assert s.get(Run, loop.run_id).status == "completed"
    goal = summary.goals[0]
    assert goal.best is not None and goal.best["error"] < 1.0
    assert {b["label"] for b in goal.baselines} >= {"HVA", "EfficientSU2-r1", "RealAmplitudes-r3"}
    report = tmp_path / "reports" / store_label(store.url) / f"run-{loop.run_id}"
    assert summary.report == str(report / "index.html")
    assert (report / "index.html").exists() and len(list(report.glob("*.png"))) == 3


def test_several_goals_in_one_run(store, tmp_path):
    loop, summary = run_loop(store, ["tfim-4", "h2"], tmp_path, iterations=1, prompts_per_iteration=1,
                             baselines=False)
    assert [g.goal for g in summary.goals] == ["tfim-4", "h2"]
    assert all(g.candidates >= 1 for g in summary.goals)  # distinct programs scored per goal
    with session_scope(store) as s:
        per_goal = s.execute(select(GenerationBatch.goal_id, func.count(Candidate.id)).join(Candidate)
                             .where(GenerationBatch.run_id == loop.run_id).group_by(GenerationBatch.goal_id)).all()
    assert sorted(n for _, n in per_goal) == [3, 3]  # one prompt x three temperatures for each goal


class InterruptAfter(LoopProgress):
    """Presses Ctrl-C (raises KeyboardInterrupt) once ``n`` iterations are recorded."""

    def __init__(self, n: int) -> None:
        super().__init__(enabled=False)
        self.n = n

    def iterations_done(self, done, best=None):
        if done >= self.n:
            raise KeyboardInterrupt


def test_resume_after_an_interruption_redoes_no_finished_work(store, tmp_path):
    config = DiscoveryConfig(iterations=3, prompts_per_iteration=1, baselines=False,
                             report_root=str(tmp_path / "reports"))
    first = DiscoveryLoop([get_goal("tfim-4")], config, engine=store, progress=InterruptAfter(1))
    with eager(url_of(store)), pytest.raises(KeyboardInterrupt):
        first.run()
    run_id = first.run_id
    with session_scope(store) as s:
        run = s.get(Run, run_id)
        assert (run.status, run.iteration) == ("stopped", 1)
        before = {b.id: b.created_at for b in s.execute(select(GenerationBatch)).scalars()}
        attempts = dict(s.execute(select(Evaluation.id, Evaluation.attempts)).all())
    second = DiscoveryLoop([get_goal("tfim-4")], config, engine=store, resume_run_id=run_id)
    with eager(url_of(store)):
        summary = second.run()
    assert summary.run_id == run_id and summary.status == "completed" and summary.iterations_done == 3
    with session_scope(store) as s:
        after = {b.id: b.created_at for b in s.execute(select(GenerationBatch)).scalars()}
        assert {k: after[k] for k in before} == before  # iteration 0's batch untouched
        assert sorted(s.execute(select(GenerationBatch.iteration).where(GenerationBatch.run_id == run_id))
                      .scalars()) == [0, 1, 2]
        for ev_id, n in attempts.items():  # finished evaluations were not repeated
            assert s.get(Evaluation, ev_id).attempts == n


def test_a_completed_run_cannot_be_resumed(store, tmp_path):
    loop, _ = run_loop(store, ["tfim-4"], tmp_path, iterations=1, prompts_per_iteration=1, baselines=False)
    again = DiscoveryLoop([get_goal("tfim-4")], DiscoveryConfig(), engine=store, resume_run_id=loop.run_id)
    with eager(url_of(store)), pytest.raises(Exception, match="already completed"):
        again.run()


RENAMED = '''
from qiskit import QuantumCircuit as QC
from qiskit.circuit import ParameterVector as PV


def create_ansatz(n):
    """The same HVA, written by someone else."""
    depth = max(1, n // 2)
    a, b = PV("alpha", depth), PV("b", depth)
    circ = QC(n)
    for q in range(n):
        circ.h(q)
    edges = [(k, k + 1) for k in range(n - 1)] + ([(n - 1, 0)] if n > 2 else [])
    for layer in range(depth):
        for (x, y) in edges:
            circ.rzz(2 * a[layer], x, y)
        for q in range(n):
            circ.rx(2 * b[layer], q)
    return circ
'''


def test_a_renamed_copy_of_a_circuit_is_not_rescored(store):
    from db import writes

    goal = get_goal("tfim-4")
    with session_scope(store) as s:
        goal_id = writes.upsert_goal(s, goal.to_spec(), spec_hash=goal.spec_hash, exact_energy=goal.exact_energy)
        run_id = writes.create_run(s, goal_names=["tfim-4"], generator="test")
        batch = {"generator": "test", "candidates": [{"temperature": 0.5, "raw": c, "code": c}
                                                     for c in (hva_program(goal), RENAMED)]}
        ids = writes.record_batch(s, run_id=run_id, goal_id=goal_id, iteration=0, prompt_index=0,
                                  batch=batch).candidate_ids
    with eager(url_of(store)):
        assert evaluate_candidates([ids[0]], timeout_s=120) == {ids[0]: "valid"}
        assert evaluate_candidates([ids[1]], timeout_s=120) == {ids[1]: "valid"}
    with session_scope(store) as s:
        original, copy = (s.execute(select(Evaluation).where(Evaluation.code_sha256 == writes.code_sha256(c)))
                          .scalar_one() for c in (hva_program(goal), RENAMED))
        assert original.reused_from is None and copy.reused_from and str(original.id) in copy.reused_from
        assert copy.circuit_fingerprint == original.circuit_fingerprint
        assert copy.vqe_energy == original.vqe_energy and copy.vqe_error < 1e-6
        assert "reused" in copy.timings and "vqe" not in copy.timings  # the expensive stages were skipped


def test_procedural_search_improves_on_a_weak_start(tmp_path):
    """On tfim-6 (fresh store, seeded), the best error after 5 iterations beats the first iteration's best."""
    from db.session import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    loop, summary = run_loop(engine, ["tfim-6"], tmp_path, iterations=5, prompts_per_iteration=2, baselines=False,
                             seed=0)
    with session_scope(engine) as s:
        points = history.report_points(s, loop.run_id, loop.goal_ids["tfim-6"])
    first = min(p.error for p in points if p.iteration == 0 and p.error is not None)
    final = min(p.error for p in points if p.error is not None)
    assert final < first / 10, (first, final)
    assert summary.goals[0].best["error"] == pytest.approx(final)


def cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], capture_output=True, text=True, check=False,
                          timeout=600, env={**os.environ, **FAST_ENV, "PYTHONPATH": ROOT, **(env or {})}, cwd=cwd)


@pytest.mark.parametrize("args,fragment", [
    (["--goal", "ising-9"], "unknown goal"),
    (["--goal", "tfim-4", "--generator", "gpt"], "valid: procedural, transformers, vllm"),
    (["--goal", "tfim-4", "--model", "x"], "--model/--adapter need a model backend"),
    ([], "give at least one --goal"),
    (["--resume", "999"], "no run with id 999"),
    (["--goal", "tfim-4", "--iterations", "0"], "Invalid value"),
])
def test_bad_discover_options_say_what_is_valid(args, fragment, tmp_path):
    proc = cli("discover", *args, env={"QMIND_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}"}, cwd=tmp_path)
    assert proc.returncode == 2
    assert fragment in proc.stdout + proc.stderr


def test_discover_json_prints_one_summary_object(tmp_path):
    proc = cli("discover", "--goal", "tfim-4", "--iterations", "1", "--prompts-per-iteration", "1",
               "--no-baselines", "--json", "--report-dir", str(tmp_path / "r"),
               env={"QMIND_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "completed" and out["run_id"] == 1
    assert out["report"].endswith("index.html")
    best = out["goals"][0]["best"]
    assert best is None or {"error", "depth", "two_qubit_gates", "code"} <= set(best)


def test_two_concurrent_runs_share_one_store(tmp_path):
    env = {"QMIND_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    cli("db", "upgrade", env=env, cwd=tmp_path)
    args = ["discover", "--iterations", "2", "--prompts-per-iteration", "1", "--no-baselines", "--json"]
    procs = [subprocess.Popen([sys.executable, "-m", "scheduler.cli", *args, "--goal", g, "--seed", str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                              env={**os.environ, **FAST_ENV, "PYTHONPATH": ROOT, **env})
             for i, g in enumerate(["tfim-4", "xy-4"])]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    ids = sorted(json.loads(o)["run_id"] for o, _ in outs)
    assert ids == [1, 2]


def test_the_summary_table_keeps_every_number_whole_in_an_80_column_terminal(monkeypatch):
    from types import SimpleNamespace

    from rich.console import Console

    import scheduler.cli.discover as discover_cli

    out = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setattr(discover_cli, "console", out)
    row = {"error": 1.2345e-13, "depth": 10, "num_parameters": 36, "two_qubit_gates": 18, "decay_rate": -0.017,
           "has_barren_plateau": False, "iteration": 3}
    goal = SimpleNamespace(goal="heisenberg-10", exact_energy=-18.06178542, best=row,
                           baselines=[{**row, "label": f"RealAmplitudes-r{i}"} for i in (1, 2, 3)])
    discover_cli.render_summary(SimpleNamespace(goals=[goal], run_id=1, status="completed", iterations_done=3,
                                                seconds=9.0, report="reports/run-1/index.html"))
    text = out.export_text()
    assert "…" not in text
    assert text.count("1.23e-13") == 4 and text.count("-0.017") == 4
