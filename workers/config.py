"""Configuration of the job queue (environment variables with the ``QMIND_`` prefix).

With no ``QMIND_BROKER_URL`` every task runs eagerly in-process (the embedded default); with
``QMIND_BROKER_URL=redis://:password@host:6379/0`` the same code runs on worker processes anywhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.config import DEFAULT_DATABASE_URL

QUEUE_CPU = "cpu"
QUEUE_GPU = "gpu"


class QueueConfigError(ValueError):
    """The queue configuration cannot work; the message says which setting to change."""


class QueueConfig(BaseSettings):
    """Broker, store, limits, retries and Flower for the Celery app."""

    model_config = SettingsConfigDict(env_prefix="QMIND_", extra="ignore")

    broker_url: str = Field("", description=(
        "Redis broker, e.g. redis://:password@host:6379/0; empty = run tasks in-process (no workers)"))
    result_backend: str = Field("", description=(
        "Celery result backend (e.g. the broker's Redis); empty = none, results live in the store"))
    database_url: str = Field(DEFAULT_DATABASE_URL, description="The store's SQLAlchemy URL (see db/config.py)")
    queue_prefix: str = Field("", description=(
        "Prefix for queue names and every Redis key, so several deployments can share one Redis"))
    evaluate_soft_time_limit_s: float = Field(600.0, gt=0, description=(
        "Evaluation task: soft limit; the task records a timeout verdict"))
    evaluate_time_limit_s: float = Field(660.0, gt=0, description=(
        "Evaluation task: hard limit; the worker child is killed and the task redelivered (counts as an attempt)"))
    generate_soft_time_limit_s: float = Field(1800.0, gt=0, description="Generation task: soft limit")
    generate_time_limit_s: float = Field(1900.0, gt=0, description=(
        "Generation task: hard limit (includes loading the model on a worker's first task)"))
    visibility_timeout_s: float = Field(3600.0, gt=0, description=(
        "Redis: seconds before an unacknowledged task is given to another worker; must exceed every hard limit"))
    unacked_restore_interval_s: float = Field(10.0, gt=0, description=(
        "Redis: how often each worker looks for tasks of dead workers past the visibility timeout"))
    reconcile_every_s: float = Field(15.0, ge=0, description=(
        "How often a submitter that waits looks for work whose worker died (lease expired) or whose message the "
        "broker lost, and submits it again (0 = never)"))
    lease_ttl_s: float = Field(30.0, gt=0, description=(
        "Seconds a worker's lease on a message it holds (reserved or running) lasts without its heartbeat, which "
        "renews it every third of that; a dead worker's work is submitted again once its leases expired"))
    max_attempts: int = Field(3, ge=1, description=(
        "Attempts that die with their worker before an evaluation is marked failed"))
    retry_max: int = Field(8, ge=0, description="Retries of a task after transient broker/database errors")
    retry_backoff_s: float = Field(1.0, gt=0, description="First retry delay; doubles each retry (with jitter)")
    retry_backoff_max_s: float = Field(120.0, gt=0, description="Longest delay between two retries")
    broker_connect_timeout_s: float = Field(5.0, gt=0, description=(
        "Seconds to reach the broker before a submission fails"))
    publish_retries: int = Field(2, ge=0, description="Publish retries before a submission fails")
    task_events: bool = Field(True, description=(
        "Workers send task events (Flower's task list and worker stats need them)"))
    worker_concurrency: int = Field(0, ge=0, description="CPU worker processes per host; 0 = number of cores")
    allow_insecure_sandbox: bool = Field(False, description=(
        "Let a CPU worker start when the sandbox cannot use bubblewrap (weaker fallback isolation); never in "
        "production"))
    flower_user: str = Field("", description="Flower basic-auth user (required to start Flower)")
    flower_password: str = Field("", description="Flower basic-auth password (required to start Flower)")
    flower_address: str = Field("127.0.0.1", description="Address Flower listens on")
    flower_port: int = Field(5555, ge=1, le=65535, description="Port Flower listens on")

    # ---- derived --------------------------------------------------------------------------------------------
    @property
    def eager(self) -> bool:
        """True when no broker is configured: tasks run in the calling process."""
        return not self.broker_url.strip()

    @property
    def cpu_queue(self) -> str:
        return f"{self.queue_prefix}{QUEUE_CPU}"

    @property
    def gpu_queue(self) -> str:
        return f"{self.queue_prefix}{QUEUE_GPU}"

    def redacted_broker(self) -> str:
        """The broker URL without its password, fit for messages."""
        parts = urlsplit(self.broker_url)
        if parts.password is None:
            return self.broker_url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()

    def check(self) -> None:
        """Refuse settings that cannot work with a real broker (called at worker start-up and on submit)."""
        if self.eager:
            return
        scheme = urlsplit(self.broker_url).scheme
        if scheme not in ("redis", "rediss"):
            raise QueueConfigError(
                f"QMIND_BROKER_URL must be a Redis URL (redis://:password@host:6379/0 or rediss://...), got "
                f"scheme '{scheme}' in {self.redacted_broker()}")
        for kind in ("evaluate", "generate"):
            soft = getattr(self, f"{kind}_soft_time_limit_s")
            hard = getattr(self, f"{kind}_time_limit_s")
            if soft >= hard:
                raise QueueConfigError(
                    f"QMIND_{kind.upper()}_SOFT_TIME_LIMIT_S ({soft:g}) must be below "
                    f"QMIND_{kind.upper()}_TIME_LIMIT_S ({hard:g})")
        longest = max(self.evaluate_time_limit_s, self.generate_time_limit_s)
        if self.visibility_timeout_s <= longest:
            raise QueueConfigError(
                f"QMIND_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s:g} s) must be longer than the longest hard "
                f"time limit ({longest:g} s): otherwise Redis hands a task that is still running to a second "
                f"worker. Raise QMIND_VISIBILITY_TIMEOUT_S or lower the time limits")
