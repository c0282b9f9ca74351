"""Real Redis and real worker processes for integration tests.

Each test session gets its own Redis key prefix (on a Redis DB index other helpers do not use) so parallel runs
never see each other's queues; keys with the prefix are deleted at the end (never FLUSHDB/FLUSHALL).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import time
from typing import Iterator

import pytest
import redis

ROOT = pathlib.Path(__file__).resolve().parents[1]
REDIS_HOST = os.environ.get("QMIND_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("QMIND_TEST_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("QMIND_TEST_REDIS_DB", "11"))


def redis_client() -> redis.Redis:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is needed on {REDIS_HOST}:{REDIS_PORT} (run `make services`): {exc}")
    return client


def delete_prefix(prefix: str) -> None:
    client = redis_client()
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)


def queue_env(database_url: str, prefix: str, **overrides: str) -> dict[str, str]:
    """Environment for workers and submitters of one test: short limits, fast retries."""
    env = {
        "QMIND_BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        "QMIND_QUEUE_PREFIX": prefix,
        "QMIND_DATABASE_URL": database_url,
        "QMIND_EVALUATE_SOFT_TIME_LIMIT_S": "100",
        "QMIND_EVALUATE_TIME_LIMIT_S": "110",
        "QMIND_GENERATE_SOFT_TIME_LIMIT_S": "200",
        "QMIND_GENERATE_TIME_LIMIT_S": "220",
        "QMIND_VISIBILITY_TIMEOUT_S": "300",
        "QMIND_MAX_ATTEMPTS": "3",
        "QMIND_RETRY_BACKOFF_S": "0.5",
        "QMIND_RETRY_BACKOFF_MAX_S": "3",
        "QMIND_RETRY_MAX": "20",
        "QMIND_BROKER_CONNECT_TIMEOUT_S": "2",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def new_prefix() -> str:
    return f"qmt-{secrets.token_hex(4)}-"


@contextlib.contextmanager
def configured_app(env: dict[str, str]) -> Iterator:
    """Point this process's Celery app at the test broker (restored to eager afterwards)."""
    from workers.app import app, configure
    from workers.config import QueueConfig

    fields = {k[len("QMIND_"):].lower(): v for k, v in env.items() if k.startswith("QMIND_")}
    configure(app, QueueConfig(**fields))
    try:
        yield app
    finally:
        configure(app, QueueConfig(broker_url="", database_url=os.environ.get("QMIND_DATABASE_URL",
                                                                                "sqlite:///qmind.db")))


class Worker:
    """A real ``qmind worker`` process (its own session, so the whole tree can be stopped)."""

    def __init__(self, env: dict[str, str], log_dir: pathlib.Path, *, queues: str = "cpu", concurrency: int = 1,
                 name: str | None = None, extra: tuple[str, ...] = (), celery: bool = False) -> None:
        self.name = name or f"{queues}-{secrets.token_hex(3)}@test"
        self.log = log_dir / f"{self.name.replace('@', '_')}.log"
        if celery:  # plain `celery worker`, e.g. to --include benchmark tasks
            prefix = env["QMIND_QUEUE_PREFIX"]
            args = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", prefix + queues,
                    "-c", str(concurrency), "-n", self.name, "-l", "info", "-E", "--without-gossip",
                    "--without-mingle", *extra]
        else:
            args = [sys.executable, "-m", "scheduler.cli", "worker", "--queues", queues, "--concurrency",
                    str(concurrency), "--hostname", self.name, *extra]
        self._fh = self.log.open("w")
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> "Worker":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log.read_text():
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.2)
        raise AssertionError(f"worker {self.name} not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text()[-6000:]

    def children(self) -> list[int]:
        """Pool child processes of the worker's main process."""
        try:
            text = pathlib.Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except FileNotFoundError:
            return []
        return [int(p) for p in text.split()]

    def kill_child(self) -> int:
        kids = self.children()
        assert len(kids) == 1, f"expected one pool child, found {kids}"
        os.kill(kids[0], signal.SIGKILL)
        return kids[0]

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):  # stragglers of the session (sandboxes, pool children)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._fh.close()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
