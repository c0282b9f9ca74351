"""Wiring of the Celery app, in-process (eager mode is an emulation: these tests check configuration and wiring
only; tests/test_queue_integration.py runs real Redis, PostgreSQL and worker processes)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from storehelpers import add_batch, add_goal, eager_sqlite_store, new_run
from typer.testing import CliRunner

import workers.tasks  # noqa: F401  (registers the tasks)
from db.migrate import upgrade_database
from db.models import Evaluation
from db.session import make_engine, session_scope
from scheduler.cli import app as cli_app
from tests.ansatz_library import LAYERED
from workers.app import EVALUATE_TASK, GENERATE_TASK, app, configure
from workers.config import QueueConfig, QueueConfigError
from workers.launch import retry_delay

VALID = LAYERED  # a valid candidate


@pytest.fixture
def eager_store(tmp_path, monkeypatch):
    """The embedded default: an SQLite file and no broker."""
    with eager_sqlite_store(tmp_path / "eager.db", monkeypatch) as engine:
        yield engine


def test_the_app_speaks_json_only_acknowledges_late_and_prefetches_one_task():
    conf = app.conf
    assert conf.task_serializer == conf.result_serializer == "json" and list(conf.accept_content) == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert app.tasks[EVALUATE_TASK].acks_on_timeout is False  # a hard time limit re-queues: counted as an attempt


def test_generation_goes_to_the_gpu_queue_and_evaluation_to_the_cpu_queue():
    configure(app, QueueConfig(broker_url="redis://127.0.0.1:6379/11", queue_prefix="p-"))
    try:
        route = app.amqp.router.route
        cpu, gpu = route({}, EVALUATE_TASK)["queue"], route({}, GENERATE_TASK)["queue"]
        assert (cpu.name, cpu.exchange.name, cpu.routing_key) == ("p-cpu", "p-cpu", "p-cpu")
        assert (gpu.name, gpu.exchange.name, gpu.routing_key) == ("p-gpu", "p-gpu", "p-gpu")
        assert app.conf.broker_transport_options["global_keyprefix"] == "p-"
        assert app.conf.broker_transport_options["visibility_timeout"] == 3600
        assert app.tasks[EVALUATE_TASK].time_limit == 660 and app.tasks[GENERATE_TASK].soft_time_limit == 1800
        assert not app.conf.task_always_eager
    finally:
        configure(app, QueueConfig(broker_url=""))
    assert app.conf.task_always_eager and app.conf.task_eager_propagates


@pytest.mark.parametrize("fields, message", [
    ({"visibility_timeout_s": 600}, r"VISIBILITY_TIMEOUT_S \(600 s\) must be longer than the longest hard time limit"),
    ({"evaluate_soft_time_limit_s": 700}, r"EVALUATE_SOFT_TIME_LIMIT_S \(700\) must be below"),
    ({"broker_url": "amqp://guest@localhost//"}, "must be a Redis URL"),
])
def test_settings_that_cannot_work_are_refused_with_the_setting_to_change(fields, message):
    config = QueueConfig(**{"broker_url": "redis://:pw@127.0.0.1:6379/0", **fields})
    with pytest.raises(QueueConfigError, match=message):
        config.check()
    with pytest.raises(QueueConfigError):
        configure(app, config)


def test_without_a_broker_no_limit_check_is_needed():
    QueueConfig(broker_url="", visibility_timeout_s=1).check()


def test_the_broker_password_is_hidden_in_messages():
    config = QueueConfig(broker_url="redis://:hunter2@cache:6379/0")
    assert config.redacted_broker() == "redis://:***@cache:6379/0"


def test_retry_delays_grow_exponentially_up_to_the_cap():
    config = QueueConfig(retry_backoff_s=1, retry_backoff_max_s=10)
    delays = [[retry_delay(config, n) for _ in range(50)] for n in range(6)]
    assert all(0.5 <= d <= 1 for d in delays[0]) and all(2 <= d <= 4 for d in delays[2])
    assert all(5 <= d <= 10 for d in delays[5])


def test_qmind_worker_refuses_to_start_without_a_broker(monkeypatch):
    monkeypatch.delenv("QMIND_BROKER_URL", raising=False)
    result = CliRunner().invoke(cli_app, ["worker", "--queues", "cpu"])
    assert result.exit_code == 2 and "QMIND_BROKER_URL" in result.stderr


def test_qmind_worker_refuses_a_visibility_timeout_below_the_hard_limits(monkeypatch):
    monkeypatch.setenv("QMIND_BROKER_URL", "redis://127.0.0.1:6379/11")
    monkeypatch.setenv("QMIND_VISIBILITY_TIMEOUT_S", "60")
    result = CliRunner().invoke(cli_app, ["worker", "--queues", "cpu"])
    assert result.exit_code == 2 and "QMIND_VISIBILITY_TIMEOUT_S" in result.stderr


def test_qmind_worker_refuses_a_store_whose_schema_is_behind(monkeypatch, tmp_path):
    monkeypatch.setenv("QMIND_BROKER_URL", "redis://127.0.0.1:6379/11")
    monkeypatch.setenv("QMIND_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(cli_app, ["worker", "--queues", "cpu"])
    assert result.exit_code == 2 and "run `qmind db upgrade`" in " ".join(result.stderr.split())


def test_qmind_flower_refuses_to_start_without_credentials(monkeypatch):
    monkeypatch.setenv("QMIND_BROKER_URL", "redis://127.0.0.1:6379/11")
    monkeypatch.delenv("QMIND_FLOWER_PASSWORD", raising=False)
    monkeypatch.setenv("QMIND_FLOWER_USER", "admin")
    result = CliRunner().invoke(cli_app, ["flower"])
    assert result.exit_code == 2 and "QMIND_FLOWER_PASSWORD" in result.stderr


def test_an_eager_submission_evaluates_in_process_and_stores_one_verdict(eager_store):
    from workers.submit import evaluate_candidates

    with session_scope(eager_store) as s:
        goal_id, run_id = add_goal(s, "tfim-4"), new_run(s)
        rec = add_batch(s, run_id=run_id, goal_id=goal_id, codes=[VALID, None, VALID])
    statuses = evaluate_candidates(rec.candidate_ids, timeout_s=5)
    assert statuses == {rec.candidate_ids[0]: "valid", rec.candidate_ids[1]: "no-code",
                        rec.candidate_ids[2]: "valid"}
    again = evaluate_candidates(rec.candidate_ids, timeout_s=5)  # a repeated submission changes nothing
    assert again == statuses
    with session_scope(eager_store) as s:
        rows = s.execute(select(Evaluation)).scalars().all()
        assert len(rows) == 1 and rows[0].attempts == 1 and rows[0].vqe_error is not None
        assert rows[0].worker_host and rows[0].circuit_fingerprint


def test_an_eager_generation_stores_the_batch_and_its_candidates(eager_store):
    from db.models import GenerationBatch
    from workers.submit import submit_generation, wait_for_batches

    with session_scope(eager_store) as s:
        goal_id, run_id = add_goal(s, "tfim-4"), new_run(s)
    prompts = [{"prompt_index": i, "memory_context": "", "seed": i} for i in range(2)]
    submit_generation(run_id=run_id, goal_id=goal_id, iteration=0, prompts=prompts,
                      generator={"generator": "procedural"})
    batches = wait_for_batches(run_id=run_id, goal_id=goal_id, iteration=0, prompt_indices=[0, 1], timeout_s=5)
    assert [b.status for b in batches] == ["done", "done"] and all(len(b.candidate_ids) == 3 for b in batches)
    with session_scope(eager_store) as s:
        row = s.get(GenerationBatch, batches[0].batch_id)
        assert row.generator == "procedural" and row.model_version_id is not None and row.prompt


def test_qmind_worker_refuses_a_broker_it_cannot_reach(monkeypatch, tmp_path):
    from storehelpers import free_port

    url = f"sqlite:///{tmp_path / 'ok.db'}"
    upgrade_database(make_engine(url))
    monkeypatch.setenv("QMIND_BROKER_URL", f"redis://:pw@127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("QMIND_DATABASE_URL", url)
    monkeypatch.setenv("QMIND_BROKER_CONNECT_TIMEOUT_S", "1")
    result = CliRunner().invoke(cli_app, ["worker", "--queues", "cpu"])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2 and "cannot reach the broker at redis://:***@127.0.0.1" in message


def test_a_plain_celery_worker_also_refuses_a_store_whose_schema_is_behind(tmp_path):
    import os
    import pathlib
    import subprocess
    import sys

    env = {**os.environ, "QMIND_BROKER_URL": "redis://127.0.0.1:6379/11", "QMIND_QUEUE_PREFIX": "never-used-",
           "QMIND_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-c", "1"],
                            cwd=pathlib.Path(__file__).resolve().parents[1], env=env, check=False,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "run `qmind db upgrade`" in result.stderr

