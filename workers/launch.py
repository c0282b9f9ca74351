"""How workers are launched and kept going: pools, queues, node names, Flower's basic auth, the retry policy,
and whether anybody consumes a queue.

One place for the operational rules that ``qmind worker``, ``qmind flower``, ``qmind cluster``, the Celery app,
the tasks and the submitters all follow:

- a CPU worker is a prefork pool (one process per core) on the ``cpu`` queue, named ``cpu[N]@HOST``; a GPU worker
  is one process (solo pool) on the ``gpu`` queue, named ``gpu[I]@HOST``;
- generation that needs no model (the procedural generator) goes on the ``cpu`` queue, so a cluster without a GPU
  still runs the main job; model backends go on ``gpu``;
- Flower never starts without basic auth;
- transient broker/database errors are retried with exponential backoff and jitter; publishing retries briefly.
"""

from __future__ import annotations

import dataclasses
import math
import random
import socket
import time
from collections.abc import Callable

import redis.exceptions
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .config import QueueConfig, QueueConfigError

#: Generators that need no model and no GPU: their generation tasks go on the cpu queue.
MODEL_FREE_GENERATORS = frozenset({"procedural"})


class LaunchError(QueueConfigError):
    """A worker or Flower cannot be started as asked; the message says what to change."""


# ---- retry policy -------------------------------------------------------------------------------------------------
#: Errors worth retrying: the broker or the database blinked. Never raised for a candidate's own failure.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, ConnectionError, TimeoutError, KombuOperationalError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """True for a broker or database outage (worth a retry), False for anything a task itself got wrong."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)


def retry_delay(config: QueueConfig, retries: int) -> float:
    """A task's next retry delay: uniform in [c/2, c], c = min(QMIND_RETRY_BACKOFF_MAX_S, base * 2**retries)."""
    ceiling = min(config.retry_backoff_max_s, config.retry_backoff_s * math.pow(2, retries))
    return random.uniform(0.5 * ceiling, ceiling)


def publish_retry_policy(config: QueueConfig) -> dict:
    """How a submitter retries reaching the broker (Celery's publish retry policy and ``ensure_connection``)."""
    return {"max_retries": config.publish_retries, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


# ---- queues and pools ---------------------------------------------------------------------------------------------
def generation_queue(config: QueueConfig, generator: str) -> str:
    """The queue a generation task for ``generator`` goes on: ``cpu`` when it needs no model, else ``gpu``."""
    return config.cpu_queue if generator in MODEL_FREE_GENERATORS else config.gpu_queue


def node_name(kind: str, index: int | None = None, host: str | None = None) -> str:
    """A worker's Celery node name: ``cpu@HOST``, ``cpu2@HOST``, ``gpu0@HOST``."""
    return f"{kind}{'' if index is None else index}@{host or socket.gethostname()}"


@dataclasses.dataclass(frozen=True)
class WorkerPlan:
    """How one worker process runs."""

    kind: str
    """cpu (evaluation, model-free generation) or gpu (model generation)."""
    queue: str
    """The broker queue it consumes (with QMIND_QUEUE_PREFIX)."""
    pool: str
    """Celery pool: prefork for CPU workers, solo (one process holding the model) for GPU workers."""
    concurrency: int
    node: str
    env: dict = dataclasses.field(default_factory=dict)
    """Environment the worker needs set (CUDA_VISIBLE_DEVICES for a GPU worker)."""
    notes: tuple[str, ...] = ()

    def celery_argv(self, *, loglevel: str, task_events: bool) -> list[str]:
        argv = ["worker", "--queues", self.queue, "--pool", self.pool, "--concurrency", str(self.concurrency),
                "--hostname", self.node, "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
        return argv + (["--task-events"] if task_events else [])


def worker_plan(kind: str, config: QueueConfig, *, concurrency: int | None = None, gpu: int | None = None,
                hostname: str | None = None, cpu_count: int | None = None) -> WorkerPlan:
    """The pool, concurrency, queue and node name of a ``kind`` worker; LaunchError for impossible options."""
    if kind not in ("cpu", "gpu"):
        raise LaunchError(f"--queues must be 'cpu' or 'gpu', got '{kind}'")
    if kind == "cpu":
        if gpu is not None:
            raise LaunchError("--gpu is for gpu workers; drop it or use --queues gpu")
        procs = concurrency or config.worker_concurrency or cpu_count or 1
        return WorkerPlan("cpu", config.cpu_queue, "prefork", procs, hostname or node_name("cpu"))
    notes = ()
    if concurrency not in (None, 1):
        notes = ("a gpu worker runs one process (solo pool); --concurrency ignored",)
    env = {} if gpu is None else {"CUDA_VISIBLE_DEVICES": str(gpu)}
    return WorkerPlan("gpu", config.gpu_queue, "solo", 1, hostname or node_name("gpu", gpu), env, notes)


def start_command(kind: str) -> str:
    """The command that starts a consumer of the ``kind`` queue (for messages)."""
    return f"`qmind worker --queues {kind}`" + (" on a machine with a GPU" if kind == "gpu" else "") + \
        " or `qmind cluster up`"


# ---- Flower -------------------------------------------------------------------------------------------------------
def flower_basic_auth(config: QueueConfig, *, alternative: str = "") -> str:
    """``user:password`` for Flower's basic auth; LaunchError when the credentials are missing or unusable."""
    if not config.flower_user or not config.flower_password:
        raise LaunchError("Flower needs credentials: set QMIND_FLOWER_USER and QMIND_FLOWER_PASSWORD (it shows task "
                          "arguments and can control workers, so it never starts without basic auth)" + alternative)
    if ":" in config.flower_user:
        raise LaunchError("QMIND_FLOWER_USER must not contain ':'")
    return f"{config.flower_user}:{config.flower_password}"


# ---- consumers ----------------------------------------------------------------------------------------------------
def queue_consumers(celery_app, *, timeout_s: float = 1.0) -> dict[str, set[str]]:
    """Queue name -> node names of the workers that answered and consume it (an empty dict when none answered)."""
    try:
        replies = celery_app.control.inspect(timeout=timeout_s).active_queues() or {}
    except Exception:  # noqa: BLE001 - the broker is down: nobody answered
        replies = {}
    out: dict[str, set[str]] = {}
    for node, queues in replies.items():
        for q in queues or []:
            out.setdefault(q.get("name", ""), set()).add(node)
    return out


class NoConsumerError(RuntimeError):
    """Nothing consumes a queue the run waits on, and the run was told not to wait for one."""


@dataclasses.dataclass
class QueueWatch:
    """Says, within ``first_after_s`` of waiting, when no worker consumes ``queue``, and again every ``every_s``
    while that lasts; raises NoConsumerError instead when ``fail`` is set."""

    queue: str
    kind: str
    celery_app: object
    log: Callable[[str], None]
    fail: bool = False
    first_after_s: float = 3.0
    every_s: float = 60.0
    _next: float | None = None
    _warned: bool = False

    def poll(self) -> None:
        now = time.monotonic()
        if self._next is None:
            self._next = now + self.first_after_s
        if now < self._next:
            return
        self._next = now + self.every_s
        if queue_consumers(self.celery_app).get(self.queue):
            if self._warned:
                self.log(f"a worker now consumes queue '{self.queue}'")
                self._warned = False
            return
        message = f"no worker consumes queue '{self.queue}'; start one with {start_command(self.kind)}"
        if self.fail:
            raise NoConsumerError(message)
        self._warned = True
        self.log(f"{message}. Waiting (pass --fail-without-workers to stop instead).")
