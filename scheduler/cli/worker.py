"""``qmind worker --queues cpu|gpu`` and ``qmind flower``: thin wrappers around ``celery worker`` / ``flower``
that refuse to start on a configuration that cannot work."""

from __future__ import annotations

import os
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
    from workers.config import QueueConfig
    from workers.launch import LaunchError, worker_plan

    try:
        plan = worker_plan(queues, QueueConfig(), concurrency=concurrency, gpu=gpu, hostname=hostname,
                           cpu_count=os.cpu_count())
    except (LaunchError, ValueError) as exc:
        usage_error(str(exc))
    config = _queue_config()
    if plan.kind == "cpu":  # candidate code runs here: refuse without sandbox isolation unless explicitly allowed
        from workers.config import QueueConfigError
        from workers.isolation_check import require_isolation

        try:
            err_console.print(require_isolation(config), highlight=False, markup=False)
        except QueueConfigError as exc:  # InsecureSandboxError, or a bad QMIND_SANDBOX_* value
            usage_error(str(exc))
    celery_app = _connected_app(config)
    os.environ.update(plan.env)
    for note in plan.notes:
        err_console.print(f"note: {note}")
    celery_app.worker_main(plan.celery_argv(loglevel=loglevel, task_events=config.task_events))


def _connected_app(config):
    """The Celery app configured from ``config``, after checking the store's schema and the broker."""
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
    return celery_app


@app.command("flower")
def flower(
    port: int = typer.Option(None, "--port", help="Port (default: QMIND_FLOWER_PORT, 5555)."),
    address: str = typer.Option(None, "--address", help="Address (default: QMIND_FLOWER_ADDRESS, 127.0.0.1)."),
) -> None:
    """Start Flower against the configured broker, behind basic auth (QMIND_FLOWER_USER / _PASSWORD)."""
    from workers.launch import LaunchError, flower_basic_auth

    config = _queue_config()
    try:
        env = dict(os.environ, FLOWER_BASIC_AUTH=flower_basic_auth(config))
    except LaunchError as exc:
        usage_error(str(exc))
    argv = [sys.executable, "-m", "celery", "-A", "workers.app", "flower",
            f"--port={port or config.flower_port}", f"--address={address or config.flower_address}"]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)
