"""``qmind cluster up|down|status`` for real: the daemons are real ``qmind worker`` and ``qmind flower`` processes
against a Redis server of the test's own and a fresh PostgreSQL database. The only stand-in is ``nvidia-smi``
(this machine has no GPU): a script on PATH that lists one GPU, so the GPU-worker path runs (the worker loads
its model lazily, so it starts and answers pings without one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from faulthelpers import OWN_REDIS, process_group_alive
from storehelpers import create_pg_database, drop_pg_database, free_port

from db.migrate import upgrade_database
from db.session import make_engine
from scheduler.cluster import count_gpus, plan

own_redis_fixture = OWN_REDIS

ROOT = Path(__file__).resolve().parent.parent
FAKE_NVIDIA_SMI = """#!/bin/sh
# stand-in for the real nvidia-smi (no GPU on the test machine): one GPU, in the format a real H100 host printed
echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-3d65d3de-fb92-63b6-3849-d677172d1171)"
"""


def qmind(*args: str, env: dict, timeout: float = 180) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "scheduler.cli", *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"expected one JSON object, got stdout={proc.stdout!r} stderr={proc.stderr[-3000:]!r}"
    return proc.returncode, json.loads(lines[0])


@pytest.fixture(scope="module")
def database():
    name, url = create_pg_database("qmind_cluster")
    engine = make_engine(url)
    upgrade_database(engine)
    engine.dispose()
    yield url
    drop_pg_database(name)


def base_env(tmp_path: Path, broker: str, database: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QMIND_")}
    env.update({"QMIND_BROKER_URL": broker, "QMIND_DATABASE_URL": database, "QMIND_CLUSTER_DIR": str(tmp_path / "c"),
                "QMIND_FLOWER_USER": "admin", "QMIND_FLOWER_PASSWORD": "f1ower-pass", "QMIND_FLOWER_PORT":
                str(free_port()), "QMIND_CLUSTER_START_TIMEOUT_S": "120", "QMIND_BROKER_CONNECT_TIMEOUT_S": "2",
                "QMIND_QUEUE_PREFIX": "qmc-", **extra})
    return env


# ---- refusing to start --------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_cluster_up_says_clearly_that_redis_does_not_answer_and_starts_nothing(tmp_path, database):
    port = free_port()
    env = base_env(tmp_path, f"redis://:pw@127.0.0.1:{port}/0", database)
    code, out = qmind("cluster", "up", env=env, timeout=60)
    assert code == 1
    assert f"Redis does not answer at redis://:***@127.0.0.1:{port}/0" in out["error"]
    assert "Nothing was started" in out["error"] and "pw@" not in out["error"]
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").glob("*.pid"))


@pytest.mark.integration
def test_cluster_up_says_when_the_redis_password_is_wrong(tmp_path, database, own_redis):
    env = base_env(tmp_path, f"redis://:wrong@127.0.0.1:{own_redis.port}/0", database)
    code, out = qmind("cluster", "up", env=env, timeout=60)
    assert code == 1 and "refused the credentials" in out["error"], out


@pytest.mark.integration
def test_cluster_up_refuses_a_store_without_the_schema_and_names_the_command(tmp_path, own_redis):
    name, url = create_pg_database("qmind_cluster_empty")
    try:
        code, out = qmind("cluster", "up", env=base_env(tmp_path, own_redis.url, url), timeout=60)
    finally:
        drop_pg_database(name)
    assert code == 1 and "qmind db upgrade" in out["error"], out


@pytest.mark.integration
def test_cluster_up_needs_flower_credentials_unless_told_not_to_start_flower(tmp_path, database, own_redis):
    env = base_env(tmp_path, own_redis.url, database, QMIND_FLOWER_PASSWORD="")
    code, out = qmind("cluster", "up", env=env, timeout=60)
    assert code == 2 and "QMIND_FLOWER_PASSWORD" in out["error"] and "--no-flower" in out["error"]


def test_the_plan_has_one_gpu_worker_per_gpu_and_cpu_workers_with_their_concurrency():
    specs = plan(cpu_workers=2, concurrency=3, gpus=2, flower=True, host="h")
    assert [s.name for s in specs] == ["cpu1", "cpu2", "gpu0", "gpu1", "flower"]
    assert [s.node for s in specs] == ["cpu1@h", "cpu2@h", "gpu0@h", "gpu1@h", None]
    assert specs[0].argv[-2:] == ("--concurrency", "3") and "cpu" in specs[0].argv
    assert specs[3].argv[specs[3].argv.index("--gpu") + 1] == "1" and "gpu" in specs[3].argv


def test_gpus_are_counted_from_nvidia_smi(tmp_path, monkeypatch):
    (tmp_path / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (tmp_path / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert count_gpus() == 1


# ---- the whole life of a cluster ----------------------------------------------------------------------------------
@pytest.mark.integration
def test_a_cluster_comes_up_reports_its_health_recovers_a_dead_worker_and_goes_down(tmp_path, database, own_redis):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = base_env(tmp_path, own_redis.url, database, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cluster_dir = tmp_path / "c"
    try:
        code, up = qmind("cluster", "up", "--cpu-workers", "2", "--concurrency", "1", env=env)
        assert code == 0 and up["ready"], up
        procs = {p["name"]: p for p in up["processes"]}
        assert set(procs) == {"cpu1", "cpu2", "gpu0", "flower"} and up["gpus"] == 1
        assert all(p["action"] == "started" and p["alive"] for p in procs.values())
        assert all(procs[n]["ping"] for n in ("cpu1", "cpu2", "gpu0"))
        assert up["flower"]["auth_enforced"] and up["flower"]["authorized_status"] == 200
        assert sorted(p.name for p in cluster_dir.glob("*.log")) == ["cpu1.log", "cpu2.log", "flower.log",
                                                                    "gpu0.log"]
        assert "--gpu 0" in (cluster_dir / "gpu0.log").read_text()  # one GPU worker, pinned to its GPU

        code, again = qmind("cluster", "up", "--cpu-workers", "2", "--concurrency", "1", env=env)
        assert code == 0 and {p["name"]: p["pid"] for p in again["processes"]} == \
            {n: p["pid"] for n, p in procs.items()}
        assert {p["action"] for p in again["processes"]} == {"running"}, "up is idempotent"

        code, status = qmind("cluster", "status", env=env)
        assert code == 0 and status["healthy"] and status["broker"] == "ok" and status["flower"]["ok"]

        os.killpg(procs["cpu2"]["pid"], signal.SIGKILL)
        code, status = qmind("cluster", "status", env=env)
        rows = {p["name"]: p for p in status["processes"]}
        assert code == 1 and not status["healthy"]
        assert rows["cpu2"]["alive"] is False and rows["cpu2"]["ping"] is False
        assert rows["cpu1"]["alive"] and rows["cpu1"]["ping"]

        code, healed = qmind("cluster", "up", "--cpu-workers", "2", "--concurrency", "1", env=env)
        actions = {p["name"]: p["action"] for p in healed["processes"]}
        assert code == 0 and actions == {"cpu1": "running", "cpu2": "started", "gpu0": "running",
                                         "flower": "running"}
    finally:
        code, down = qmind("cluster", "down", "--timeout", "30", env=env)
    assert code == 0 and {p["name"] for p in down["processes"]} == {"cpu1", "cpu2", "gpu0", "flower"}
    assert all(not p["alive"] for p in down["processes"])
    assert not list(cluster_dir.glob("*.pid"))
    assert not any(process_group_alive(p["pid"]) for p in down["processes"]), "a daemon survived `down`"
    code, twice = qmind("cluster", "down", env=env)
    assert code == 0 and twice["processes"] == []
