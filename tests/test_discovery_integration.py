"""The discovery loop through real Redis and real worker processes against a fresh PostgreSQL database: a
cluster without GPU (one CPU-queue worker) runs the procedural generator and the evaluations."""

from __future__ import annotations

import pytest
from queuehelpers import Worker, configured_app, delete_prefix, new_prefix, queue_env
from sqlalchemy import select
from storehelpers import create_pg_database, drop_pg_database

from db.migrate import upgrade_database
from db.models import Candidate, Evaluation, GenerationBatch, Run
from db.session import make_engine, session_scope
from scheduler.loop import DiscoveryConfig, DiscoveryLoop
from workers.evaluation.goals import get_goal

pytestmark = pytest.mark.integration


def test_a_discovery_runs_through_redis_and_worker_processes(tmp_path, monkeypatch):
    name, url = create_pg_database("qmind_loop")
    engine = make_engine(url)
    upgrade_database(engine)
    prefix = new_prefix()
    env = queue_env(url, prefix, QMIND_BP_SAMPLES="40", QMIND_VQE_RESTARTS="2")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    workers = [Worker(env, tmp_path, queues="cpu", concurrency=2, name="cpu-loop@test")]
    try:
        for w in workers:
            w.wait_ready()
        with configured_app(env):
            config = DiscoveryConfig(iterations=2, prompts_per_iteration=2, report_root=str(tmp_path / "r"),
                                     evaluation_timeout_s=600, generation_timeout_s=300)
            loop = DiscoveryLoop([get_goal("tfim-4")], config, engine=engine)
            summary = loop.run()
        assert summary.status == "completed" and summary.iterations_done == 2
        with session_scope(engine) as s:
            assert s.get(Run, loop.run_id).status == "completed"
            hosts = set(s.execute(select(GenerationBatch.worker_host)
                                  .where(GenerationBatch.run_id == loop.run_id, GenerationBatch.iteration >= 0))
                        .scalars())
            assert hosts == {"cpu-loop@test"}  # model-free generation ran on the cpu queue, not here
            shas = set(s.execute(select(Candidate.code_sha256).join(GenerationBatch)
                                 .where(GenerationBatch.run_id == loop.run_id, Candidate.code_sha256.is_not(None)))
                       .scalars())
            evs = s.execute(select(Evaluation).where(Evaluation.code_sha256.in_(shas))).scalars().all()
            assert len(evs) == len(shas)  # exactly one evaluation per distinct code
            assert all(e.status != "pending" for e in evs)
            assert {e.worker_host for e in evs} == {"cpu-loop@test"}
        assert summary.goals[0].best is not None
    finally:
        for w in workers:
            w.stop()
        engine.dispose()
        delete_prefix(prefix)
        drop_pg_database(name)
