"""``qmind worker --queues cpu|gpu`` and ``qmind flower``: thin wrappers around ``celery worker`` / ``flower``
that refuse to start on a configuration that cannot work."""

from __future__ import annotations

import os
import socket
import sys

import typer

from . import app
from .common import err_console, usage_error


def _queue_config():
    from workers.config import QueueConfig, QueueConfigError

    try:
        config = QueueConfig()
        config.check()
    except (QueueConfigError, ValueError) as exc:
        usage_error(str(exc))
    if config.eager:
        usage_error("no broker configured: set QMIND_BROKER_URL=redis://:password@host:6379/0 (without a broker, "
                    "tasks run in the submitting process and no worker is needed)")
    return config


@app.command("worker")
def worker(
    queues: str = typer.Option(..., "--queues", "-Q", help="cpu (evaluation) or gpu (generation)."),
    concurrency: int = typer.Option(None, "--concurrency", "-c", min=1,
                                    help="CPU worker processes (default: QMIND_WORKER_CONCURRENCY, else cores)."),
    gpu: int = typer.Option(None, "--gpu", min=0, help="GPU index for a gpu worker (sets CUDA_VISIBLE_DEVICES)."),
    hostname: str = typer.Option(None, "--hostname", "-n", help="Worker name (default: cpu@HOST / gpu<i>@HOST)."),
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="debug, info, warning or error."),
) -> None:
    """Start a Celery worker: CPU workers prefork (one process per core), GPU workers one process per GPU."""
    if queues not in ("cpu", "gpu"):
        usage_error(f"--queues must be 'cpu' or 'gpu', got '{queues}'")
    if queues == "cpu" and gpu is not None:
        usage_error("--gpu is for gpu workers; drop it or use --queues gpu")
    config = _queue_config()
    if queues == "cpu":  # candidate code runs here: refuse without sandbox isolation unless explicitly allowed
        from workers.config import QueueConfigError
        from workers.isolation_check import require_isolation

        try:
            err_console.print(require_isolation(config), highlight=False, markup=False)
        except QueueConfigError as exc:  # InsecureSandboxError, or a bad QMIND_SANDBOX_* value
            usage_error(str(exc))
    from sqlalchemy.exc import SQLAlchemyError

    from db.errors import StoreError
    from db.migrate import ensure_schema
    from db.session import redact
    from workers.app import app as celery_app
    from workers.app import configure
    from workers.store import get_engine
    from workers.submit import QueueUnavailableError, check_broker

    configure(celery_app, config)
    try:
        ensure_schema(get_engine(config), upgrade=False)
        check_broker(celery_app)
    except (StoreError, QueueUnavailableError) as exc:
        usage_error(str(exc))
    except SQLAlchemyError as exc:  # the database is unreachable
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        usage_error(f"cannot open the store at {redact(config.database_url)}: {detail}")
    host = socket.gethostname()
    if queues == "gpu":
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
        pool, procs = "solo", 1  # one process per GPU; the model loads lazily on the first task
        name = hostname or f"gpu{'' if gpu is None else gpu}@{host}"
        if concurrency not in (None, 1):
            err_console.print("note: a gpu worker runs one process (solo pool); --concurrency ignored")
    else:
        pool = "prefork"
        procs = concurrency or config.worker_concurrency or os.cpu_count() or 1
        name = hostname or f"cpu@{host}"
    queue = config.gpu_queue if queues == "gpu" else config.cpu_queue
    argv = ["worker", "--queues", queue, "--pool", pool, "--concurrency", str(procs), "--hostname", name,
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    if config.task_events:
        argv.append("--task-events")
    celery_app.worker_main(argv)


@app.command("flower")
def flower(
    port: int = typer.Option(None, "--port", help="Port (default: QMIND_FLOWER_PORT, 5555)."),
    address: str = typer.Option(None, "--address", help="Address (default: QMIND_FLOWER_ADDRESS, 127.0.0.1)."),
) -> None:
    """Start Flower against the configured broker, behind basic auth (QMIND_FLOWER_USER / _PASSWORD)."""
    config = _queue_config()
    if not config.flower_user or not config.flower_password:
        usage_error("Flower needs credentials: set QMIND_FLOWER_USER and QMIND_FLOWER_PASSWORD (it shows task "
                    "arguments and can control workers, so it never starts without basic auth)")
    if ":" in config.flower_user:
        usage_error("QMIND_FLOWER_USER must not contain ':'")
    env = dict(os.environ, FLOWER_BASIC_AUTH=f"{config.flower_user}:{config.flower_password}")
    argv = [sys.executable, "-m", "celery", "-A", "workers.app", "flower",
            f"--port={port or config.flower_port}", f"--address={address or config.flower_address}"]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)
