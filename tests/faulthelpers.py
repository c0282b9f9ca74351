"""A Redis server of the test's own (random port, password, AOF in a temp dir) that can be restarted, and a
PostgreSQL database of the module's own: fault tests never touch the shared Redis on 6379 or another helper's
data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from storehelpers import free_port


class RedisServer:
    """``redis-server`` as the deploy files run it: password required, AOF on, noeviction (``persistence=False``:
    no AOF and no snapshots, as `make test`'s own Redis and many single-host setups run; a restart empties it)."""

    def __init__(self, directory: Path, *, appendfsync: str = "everysec", persistence: bool = True) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is needed for the fault tests (apt-get install redis-server)")
        self.exe, self.dir, self.appendfsync, self.persistence = exe, directory, appendfsync, persistence
        self.port, self.password = free_port(), secrets.token_hex(12)
        self.log = directory / "redis.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=2,
                           socket_timeout=5)

    def start(self, timeout: float = 20.0) -> RedisServer:
        args = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", self.password,
                "--appendonly", "yes" if self.persistence else "no", "--appendfsync", self.appendfsync, "--save", "",
                "--maxmemory-policy", "noeviction", "--dir", str(self.dir), "--logfile", str(self.log),
                "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
                if self.client().ping():
                    return self
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer within {timeout} s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """SIGTERM: a graceful shutdown (AOF fsynced), as `docker stop` or a pod eviction does; SIGKILL: a crash."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        self.proc.wait(timeout)

    def restart(self, *, down_s: float = 2.0, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        time.sleep(down_s)
        self.start()

    def run_id(self) -> str:
        return self.client().info("server")["run_id"]


def _own_redis(tmp_path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory).start()
    yield server
    server.stop(signal.SIGKILL)


#: A fresh ``RedisServer`` per test; a module uses it with ``own_redis_fixture = OWN_REDIS`` and a parameter
#: named ``own_redis``.
OWN_REDIS = pytest.fixture(name="own_redis")(_own_redis)


def process_group_alive(pgid: int) -> bool:
    """True while any non-zombie process of the group exists."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
    return False


def kill_whole_worker(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGKILL a worker's main process and every pool child (they share its process group)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout)
    deadline = time.monotonic() + timeout
    while process_group_alive(proc.pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of worker group {proc.pid} survived SIGKILL")
        time.sleep(0.05)
