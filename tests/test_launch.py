"""Worker operations in one place (workers/launch.py): pools, queues, node names, Flower's auth, the retry policy,
routing of model-free generation, report folders per store, and `qmind discover` saying when nobody consumes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from queuehelpers import ROOT, delete_prefix, new_prefix, queue_env
from sqlalchemy.exc import OperationalError

from db.session import store_label
from workers.config import QueueConfig
from workers.launch import (
    LaunchError,
    flower_basic_auth,
    generation_queue,
    is_transient,
    worker_plan,
)


def test_model_free_generation_goes_on_the_cpu_queue_and_models_on_the_gpu_queue():
    config = QueueConfig(queue_prefix="p-")
    assert generation_queue(config, "procedural") == "p-cpu"
    assert {generation_queue(config, g) for g in ("transformers", "vllm", "vllm-server")} == {"p-gpu"}


def test_a_cpu_worker_is_a_prefork_pool_and_a_gpu_worker_one_process_on_its_gpu():
    config = QueueConfig(worker_concurrency=3)
    cpu = worker_plan("cpu", config, cpu_count=16, hostname="cpu@h")
    assert (cpu.queue, cpu.pool, cpu.concurrency, cpu.node, cpu.env) == ("cpu", "prefork", 3, "cpu@h", {})
    assert worker_plan("cpu", QueueConfig(), cpu_count=16).concurrency == 16
    gpu = worker_plan("gpu", config, gpu=1, concurrency=4)
    assert (gpu.queue, gpu.pool, gpu.concurrency, gpu.env) == ("gpu", "solo", 1, {"CUDA_VISIBLE_DEVICES": "1"})
    assert gpu.node.startswith("gpu1@") and "--concurrency ignored" in gpu.notes[0]
    argv = cpu.celery_argv(loglevel="info", task_events=True)
    assert argv[argv.index("--queues") + 1] == "cpu" and argv[-1] == "--task-events"


@pytest.mark.parametrize(("kind", "options", "fragment"), [
    ("tpu", {}, "--queues must be 'cpu' or 'gpu'"),
    ("cpu", {"gpu": 0}, "--gpu is for gpu workers"),
])
def test_impossible_worker_options_are_refused_with_what_to_do(kind, options, fragment):
    with pytest.raises(LaunchError, match=fragment):
        worker_plan(kind, QueueConfig(), **options)


def test_flower_never_starts_without_usable_basic_auth():
    with pytest.raises(LaunchError, match="QMIND_FLOWER_PASSWORD"):
        flower_basic_auth(QueueConfig(flower_user="admin"))
    with pytest.raises(LaunchError, match="must not contain ':'"):
        flower_basic_auth(QueueConfig(flower_user="a:b", flower_password="x"))
    assert flower_basic_auth(QueueConfig(flower_user="admin", flower_password="pw")) == "admin:pw"


def test_outages_are_transient_and_a_candidates_own_errors_are_not():
    assert is_transient(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert is_transient(ConnectionError("reset")) and not is_transient(ValueError("bad candidate"))


def test_two_stores_never_share_a_report_folder_and_one_store_always_gets_the_same(tmp_path):
    a, b = f"sqlite:///{tmp_path}/a/qmind.db", f"sqlite:///{tmp_path}/b/qmind.db"
    assert store_label(a) != store_label(b) and store_label(a).startswith("sqlite-qmind-")
    pg = "postgresql+psycopg://u:secret@db:5432/qmind"
    assert store_label(pg) == store_label("postgresql://other:pw@db:5432/qmind")  # same server and database
    assert store_label(pg) != store_label("postgresql://u:secret@db:5432/qmind2") != store_label(a)
    assert "secret" not in store_label(pg) and store_label(pg).startswith("postgresql-qmind-")


def _discover(tmp_path, prefix: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, **queue_env(f"sqlite:///{tmp_path}/q.db", prefix), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "scheduler.cli", "discover", "--goal", "tfim-4", "-n", "1",
                             "-k", "1", "--no-baselines", "--json", *extra], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.integration
def test_discover_says_within_seconds_which_queue_has_no_worker_and_keeps_waiting(tmp_path):
    prefix = new_prefix()
    proc = _discover(tmp_path, prefix)
    try:
        started, lines = time.monotonic(), []
        for line in proc.stdout:  # blocks per line; the process keeps waiting, so it never reaches EOF early
            lines.append(line)
            if "instead" in line:  # the end of the message (the console wraps it over lines)
                break
        seconds = time.monotonic() - started
        text = " ".join("".join(lines).split())
        assert f"no worker consumes queue '{prefix}cpu'" in text, text
        assert "qmind worker --queues cpu" in text and "Waiting" in text
        assert seconds < 30, f"took {seconds:.1f} s"
        time.sleep(1)
        assert proc.poll() is None, "discover stopped instead of waiting"
    finally:
        proc.kill()
        proc.wait(10)
        delete_prefix(prefix)


@pytest.mark.integration
def test_discover_stops_without_workers_when_told_to_and_the_run_can_be_resumed(tmp_path):
    prefix = new_prefix()
    proc = _discover(tmp_path, prefix, "--fail-without-workers")
    try:
        out, _ = proc.communicate(timeout=90)
    finally:
        proc.kill()
        delete_prefix(prefix)
    assert proc.returncode == 2, out
    out = " ".join(out.split())
    assert f"no worker consumes queue '{prefix}cpu'" in out and "qmind discover --resume 1" in out, out
