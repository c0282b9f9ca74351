"""Real Flower against the real broker: basic auth, the running workers and a run's tasks through its HTTP API,
and a screenshot of its dashboard in headless Chromium (set QMIND_FLOWER_SCREENSHOT=path to keep it)."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest
from queuehelpers import (
    Flower,
    Worker,
    configured_app,
    delete_prefix,
    new_prefix,
    queue_env,
    screenshot,
    wait_until,
)
from storehelpers import add_batch, add_goal, create_pg_database, drop_pg_database, free_port, new_run

from db.migrate import upgrade_database
from db.session import make_engine, session_scope

pytestmark = pytest.mark.integration


def test_flower_lists_the_running_workers_and_a_runs_tasks_behind_basic_auth(tmp_path):
    from workers.submit import evaluate_candidates

    name, url = create_pg_database("qmind_flower")
    engine = make_engine(url)
    upgrade_database(engine)
    prefix = new_prefix()
    env = queue_env(url, prefix, QMIND_BP_SAMPLES="16", QMIND_VQE_RESTARTS="1")
    procs = []
    try:
        with configured_app(env):
            workers = [Worker(env, tmp_path, name=f"cpu-{i}@qmind-test") for i in (1, 2)]
            procs += workers
            flower = Flower(env, tmp_path, free_port())
            procs.append(flower)
            for w in workers:
                w.wait_ready()
            flower.wait_ready()
            assert flower.get("/api/workers", auth=False)[0] == 401
            assert flower.get("/", auth=False)[0] == 401
            listed = wait_until(lambda: set(flower.json("/api/workers?refresh=1")) >= {w.name for w in workers},
                                timeout=60, interval=1.0, what="flower to list both workers")
            assert listed
            with session_scope(engine) as s:
                goal_id, run_id = add_goal(s), new_run(s)
                rec = add_batch(s, run_id=run_id, goal_id=goal_id,
                                codes=[f"def create_ansatz(n):\n    return {i}\n" for i in range(3)])
            evaluate_candidates(rec.candidate_ids, timeout_s=180)

            def run_tasks():
                tasks = flower.json("/api/tasks?taskname=qmind.evaluate_candidate")
                done = [t for t in tasks.values() if t["state"] == "SUCCESS"]
                return done if len(done) == 3 else None

            done = wait_until(run_tasks, timeout=60, interval=1.0, what="flower to show the run's three tasks")
            assert sorted(eval(t["args"])[0] for t in done) == sorted(rec.candidate_ids)
            assert {t["worker"] for t in done} <= {w.name for w in workers}
            shot = tmp_path / "flower.png"
            screenshot(flower.url, shot, user=flower.user, password=flower.password, size="1400,640")
            data = shot.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
            keep = os.environ.get("QMIND_FLOWER_SCREENSHOT")
            if keep:
                pathlib.Path(keep).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, keep)
    finally:
        for p in procs:
            p.stop()
        engine.dispose()
        delete_prefix(prefix)
        drop_pg_database(name)
