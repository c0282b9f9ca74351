"""The one Celery app of quantum-mind: queues ``cpu`` (evaluation) and ``gpu`` (generation), JSON only,
late acknowledgement, one task at a time per worker process.

Worker processes build the app from the environment (``QueueConfig()``); a process that submits work can
``configure(app, QueueConfig(...))`` again. Without a broker the app runs every task eagerly in-process.
"""

from __future__ import annotations

import logging
import sys

from celery import Celery, signals
from kombu import Exchange, Queue

from .config import QueueConfig, QueueConfigError
from .launch import publish_retry_policy

log = logging.getLogger(__name__)

EVALUATE_TASK = "qmind.evaluate_candidate"
GENERATE_TASK = "qmind.generate_batch"

app = Celery("qmind", include=["workers.tasks"])


def configure(celery_app: Celery, config: QueueConfig) -> Celery:
    """Apply ``config`` to ``celery_app`` (checked first: bad limits are refused with a message)."""
    config.check()
    eager = config.eager
    transport, limits = _transport_options(config), _time_limits(config)
    celery_app.conf.update(
        broker_url=config.broker_url if not eager else "memory://",
        result_backend=config.result_backend or None,
        task_ignore_result=not config.result_backend,
        task_always_eager=eager,
        task_eager_propagates=eager,
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # each queue its own direct exchange and routing key (left out, Celery binds every queue to the default
        # exchange and key; its own publishing still goes by queue name, but the bindings would be shared)
        task_queues=tuple(Queue(name, Exchange(name, type="direct"), routing_key=name)
                          for name in (config.cpu_queue, config.gpu_queue)),
        task_default_queue=config.cpu_queue,
        task_create_missing_queues=False,
        task_routes={EVALUATE_TASK: {"queue": config.cpu_queue}, GENERATE_TASK: {"queue": config.gpu_queue}},
        task_annotations=limits,
        broker_transport_options=transport,
        result_backend_transport_options=dict(transport),
        broker_connection_timeout=config.broker_connect_timeout_s,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # A task running when the broker connection drops finishes and commits its verdict; its message comes
        # back after the visibility timeout and finds the verdict stored (no wasted work, no attempt counted).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_publish_retry=True,
        task_publish_retry_policy=publish_retry_policy(config),
        worker_send_task_events=config.task_events,
        task_track_started=True,
        worker_hijack_root_logger=False,
        qmind_config=config,
    )
    _forget_broker_state(celery_app)
    # Tasks already bound keep their old annotations: update them in place, and drop the publishing options
    # Celery cached from them.
    if celery_app.finalized:
        for task in celery_app.tasks.values():
            for attr, value in limits.get(task.name, {}).items():
                setattr(task, attr, value)
            task._exec_options = None
    return celery_app


def _transport_options(config: QueueConfig) -> dict:
    """Broker (and result backend) transport options: visibility, restore of unacknowledged tasks, timeouts."""
    transport = {
        "visibility_timeout": int(config.visibility_timeout_s),
        # a dead worker's unacknowledged task comes back within visibility_timeout + this interval
        "unacked_restore_interval": config.unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": config.broker_connect_timeout_s,
        "socket_timeout": max(30.0, config.broker_connect_timeout_s),
        "max_retries": config.publish_retries,
    }
    if config.queue_prefix:
        transport["global_keyprefix"] = config.queue_prefix
    return transport


def _time_limits(config: QueueConfig) -> dict[str, dict[str, float]]:
    """Task name -> its soft and hard time limits (Celery task annotations)."""
    return {
        EVALUATE_TASK: {"soft_time_limit": config.evaluate_soft_time_limit_s,
                        "time_limit": config.evaluate_time_limit_s},
        GENERATE_TASK: {"soft_time_limit": config.generate_soft_time_limit_s,
                        "time_limit": config.generate_time_limit_s},
    }


def _forget_broker_state(celery_app: Celery) -> None:
    """Drop connections, queues and routes cached from an earlier configuration (a process that reconfigures
    the app, e.g. a test pointing it at another broker or prefix)."""
    if getattr(celery_app, "_pool", None) is not None:
        celery_app.close()
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
        amqp._rtable = None
        for name in ("queues", "default_queue", "router", "default_exchange"):
            amqp.__dict__.pop(name, None)


def current_config(celery_app: Celery = app) -> QueueConfig:
    """The QueueConfig the app was configured with."""
    return celery_app.conf.qmind_config


configure(app, QueueConfig())


@signals.worker_init.connect
def _check_before_serving(sender=None, **_kwargs) -> None:
    """A worker refuses to start on a bad configuration or a schema it does not match (Celery would only log
    an exception raised here, so the process exits)."""
    from sqlalchemy.exc import SQLAlchemyError

    from db.errors import StoreError
    from db.migrate import ensure_schema

    from .store import get_engine

    config = current_config(app)
    try:
        config.check()
        ensure_schema(get_engine(config), upgrade=False)
    except (QueueConfigError, StoreError, SQLAlchemyError) as exc:
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        log.critical("quantum-mind worker refuses to start: %s", message)
        sys.stderr.write(f"error: quantum-mind worker refuses to start: {message}\n")
        raise SystemExit(2) from None


@signals.worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:
    """A forked pool child must not reuse the parent's database connections."""
    from .store import forget_engines

    forget_engines()
