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
from collections.abc import Iterator

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

    def wait_ready(self, timeout: float = 90.0) -> Worker:
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

    def __enter__(self) -> Worker:
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


class Flower:
    """A real ``qmind flower`` process with basic auth on a free port."""

    def __init__(self, env: dict[str, str], log_dir: pathlib.Path, port: int, *, user: str = "admin",
                 password: str | None = None) -> None:
        self.port, self.user = port, user
        self.password = password or secrets.token_hex(8)
        self.log = log_dir / "flower.log"
        self._fh = self.log.open("w")
        flower_env = {**os.environ, **env, "QMIND_FLOWER_USER": user, "QMIND_FLOWER_PASSWORD": self.password}
        self.proc = subprocess.Popen([sys.executable, "-m", "scheduler.cli", "flower", "--port", str(port)],
                                     cwd=ROOT, env=flower_env, stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, *, auth: bool = True, timeout: float = 10.0) -> tuple[int, bytes]:
        """(HTTP status, body) of a GET, with or without the basic-auth credentials."""
        import base64
        import urllib.error
        import urllib.request

        headers = {}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers),
                                        timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, path: str):
        import json

        status, body = self.get(path)
        assert status == 200, f"GET {path}: {status} {body[:300]!r}"
        return json.loads(body)

    def wait_ready(self, timeout: float = 60.0) -> Flower:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"flower exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                return self.get("/healthcheck", auth=False)[0] == 200
            except OSError:
                return False

        wait_until(up, timeout=timeout, interval=0.3, what="flower to listen")
        return self

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._fh.close()


def screenshot(url: str, path: pathlib.Path, *, user: str, password: str, size: str = "1400,900",
               wait_ms: int = 4000) -> None:
    """A headless-Chromium screenshot of ``url`` behind basic auth.

    Chromium drops credentials written into the URL, so a small local proxy adds the Authorization header.
    """
    import base64
    import http.server
    import shutil
    import threading
    import urllib.error
    import urllib.request

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("headless Chromium is needed for the Flower screenshot: apt-get install -y chromium "
                    "(scripts/system_deps.sh)")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    target = url.rstrip("/")

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            req = urllib.request.Request(target + self.path, headers={"Authorization": f"Basic {token}"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    body, status, ctype = resp.read(), resp.status, resp.headers.get("Content-Type", "")
            except urllib.error.HTTPError as exc:
                body, status, ctype = exc.read(), exc.code, exc.headers.get("Content-Type", "")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--no-first-run", "--hide-scrollbars",
                        f"--virtual-time-budget={wait_ms}", f"--window-size={size}", f"--screenshot={path}",
                        f"http://127.0.0.1:{server.server_address[1]}/"],
                       check=True, capture_output=True, timeout=120)
    finally:
        server.shutdown()
