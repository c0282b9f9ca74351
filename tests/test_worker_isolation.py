"""A CPU worker refuses to start when the sandbox cannot isolate candidates with bubblewrap, unless the operator
allows the weaker fallback with QMIND_ALLOW_INSECURE_SANDBOX=1. Bubblewrap is made unusable the honest way: by
pointing QMIND_SANDBOX_BWRAP_PATH at a file that does not exist, so the real probe fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from faulthelpers import OWN_REDIS
from queuehelpers import Worker, new_prefix, queue_env
from storehelpers import create_pg_database, drop_pg_database, free_port

from db.migrate import upgrade_database
from db.session import make_engine
from workers.config import QueueConfig
from workers.evaluation.sandbox import SandboxConfig
from workers.isolation_check import InsecureSandboxError, require_isolation

own_redis_fixture = OWN_REDIS

ROOT = Path(__file__).resolve().parent.parent
NO_BWRAP = {"QMIND_SANDBOX_BWRAP_PATH": "/nonexistent/bwrap"}


def qmind_worker(queues: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QMIND_")}
    # a broker nobody listens on and an empty store: the isolation check comes first, so neither is reached
    # when the worker refuses
    clean.update({"QMIND_BROKER_URL": f"redis://:pw@127.0.0.1:{free_port()}/0",
                  "QMIND_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
                  "QMIND_BROKER_CONNECT_TIMEOUT_S": "1", "QMIND_PUBLISH_RETRIES": "0", **env})
    return subprocess.run([sys.executable, "-m", "scheduler.cli", "worker", "--queues", queues], cwd=ROOT,
                          env=clean, capture_output=True, text=True, timeout=120, check=False)


def test_a_cpu_worker_refuses_to_start_when_bubblewrap_is_unusable(tmp_path):
    proc = qmind_worker("cpu", tmp_path, **NO_BWRAP)
    assert proc.returncode == 2
    message = " ".join(proc.stderr.split())
    assert "refusing to start a CPU worker" in message
    assert "'/nonexistent/bwrap' not found" in message
    assert "QMIND_ALLOW_INSECURE_SANDBOX=1" in message and "docs/deploy.md" in message


def test_choosing_the_fallback_explicitly_is_refused_too(tmp_path):
    proc = qmind_worker("cpu", tmp_path, QMIND_SANDBOX_ISOLATION="rlimits")
    assert proc.returncode == 2
    assert "QMIND_SANDBOX_ISOLATION=rlimits selects the fallback" in " ".join(proc.stderr.split())


def test_a_bad_sandbox_setting_is_a_clear_usage_error(tmp_path):
    proc = qmind_worker("cpu", tmp_path, QMIND_SANDBOX_WALL_SECONDS="soon")
    assert proc.returncode == 2 and "QMIND_SANDBOX_WALL_SECONDS" in proc.stderr


def test_a_gpu_worker_runs_no_candidate_code_and_does_not_check_the_sandbox(tmp_path):
    proc = qmind_worker("gpu", tmp_path, **NO_BWRAP)
    assert "refusing to start a CPU worker" not in proc.stderr
    # it got past the sandbox to the next check, the store's schema
    assert proc.returncode == 2 and "run `qmind db upgrade`" in " ".join(proc.stderr.split())


def test_the_check_passes_with_bubblewrap_and_allows_the_fallback_only_when_told():
    strong = require_isolation(QueueConfig())
    assert strong.startswith("sandbox: bubblewrap isolation"), "this machine has a usable bubblewrap"
    broken = SandboxConfig(bwrap_path="/nonexistent/bwrap")
    with pytest.raises(InsecureSandboxError, match="bubblewrap is unusable here"):
        require_isolation(QueueConfig(), sandbox_config=broken)
    allowed = require_isolation(QueueConfig(allow_insecure_sandbox=True), sandbox_config=broken)
    assert allowed.startswith("INSECURE (allowed by QMIND_ALLOW_INSECURE_SANDBOX=1)") and "WEAKER FALLBACK" in allowed


@pytest.fixture
def store_url():
    name, url = create_pg_database("qmind_isolation")
    engine = make_engine(url)
    upgrade_database(engine)
    engine.dispose()
    yield url
    drop_pg_database(name)


@pytest.mark.integration
def test_workers_start_with_bubblewrap_or_when_the_fallback_is_allowed_and_say_which(tmp_path, own_redis, store_url):
    env = queue_env(store_url, new_prefix(), QMIND_BROKER_URL=own_redis.url)
    with Worker(env, tmp_path, name="isolated@test") as isolated:
        isolated.wait_ready()
        assert "sandbox: bubblewrap isolation" in isolated.output()
    with Worker({**env, **NO_BWRAP, "QMIND_ALLOW_INSECURE_SANDBOX": "1"}, tmp_path, name="allowed@test") as weak:
        weak.wait_ready()
        assert "INSECURE (allowed by QMIND_ALLOW_INSECURE_SANDBOX=1)" in weak.output()
