"""The CPU worker's start-up check: candidate code is hostile, so a worker that evaluates it refuses to start when
the sandbox cannot isolate it with bubblewrap, unless the operator explicitly allows the weaker fallback
(``QMIND_ALLOW_INSECURE_SANDBOX=1``). Called by ``qmind worker --queues cpu`` before the worker starts."""

from __future__ import annotations

import logging

from .config import QueueConfig, QueueConfigError

log = logging.getLogger("qmind.worker")


class InsecureSandboxError(QueueConfigError):
    """The sandbox would run candidates without bubblewrap isolation and that was not allowed."""


def require_isolation(config: QueueConfig, *, sandbox_config=None, status=None) -> str:
    """Return the sandbox summary to log, or raise InsecureSandboxError.

    ``sandbox_config`` defaults to ``settings.sandbox_settings()`` (QMIND_SANDBOX_*); ``status`` to a probe of this
    host with it (``isolation_status``: does bubblewrap start the interpreter with our namespaces and seccomp?).
    """
    from workers.evaluation.errors import SandboxError
    from workers.evaluation.sandbox import isolation_status
    from workers.settings import sandbox_settings

    try:
        sandbox_config = sandbox_config or sandbox_settings()
    except SandboxError as exc:
        raise QueueConfigError(str(exc)) from exc
    status = status or isolation_status(sandbox_config)
    summary = status.summary()
    if sandbox_config.isolation == "rlimits":
        weak = "QMIND_SANDBOX_ISOLATION=rlimits selects the fallback (no namespaces)"
    elif not status.strong:
        weak = f"bubblewrap is unusable here: {status.bwrap_reason}"
    else:
        return summary
    if config.allow_insecure_sandbox:
        log.warning("QMIND_ALLOW_INSECURE_SANDBOX=1: starting although %s. %s", weak, summary)
        return f"INSECURE (allowed by QMIND_ALLOW_INSECURE_SANDBOX=1): {summary}"
    raise InsecureSandboxError(
        f"refusing to start a CPU worker: {weak}. Candidate code is untrusted and would run with the weaker "
        f"fallback (rlimits, seccomp, Landlock; no namespaces). Install bubblewrap and allow user namespaces; in "
        f"a container give the cpu-worker the seccomp, AppArmor and /proc settings of docs/deploy.md "
        f"('Sandbox inside containers'). To run anyway (never in production), set QMIND_ALLOW_INSECURE_SANDBOX=1.")
