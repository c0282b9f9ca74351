"""The worker's heartbeat: a thread in the worker's main process that keeps a lease (``db.leases``) on every task
message the worker holds, reserved or running, renewed every third of ``QMIND_LEASE_TTL_S``.

When the whole worker dies (SIGKILL, a lost host, a killed container) the renewals stop and its leases expire
after ``QMIND_LEASE_TTL_S``; the waiting submitter (``workers.reconcile``) then submits the unfinished work
whose message does not wait in the queue again, instead of waiting for the broker's visibility timeout (an hour
by default) or for a message a restarted Redis no longer holds at all. A message just received is leased at
once (``task_received`` wakes the thread), not at the next beat.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from celery import signals
from sqlalchemy import Engine

from db import leases
from db.session import session_scope

from .app import GENERATE_TASK, app, current_config

log = logging.getLogger(__name__)


def lease_holder(node: str) -> str:
    """A worker's identity in its leases: Celery node name and the main process's id."""
    return f"{node}:{os.getpid()}"


class LeaseKeeper:
    """Renews ``worker``'s leases on ``held()`` ((task, subject) pairs) every ``ttl_s / 3`` seconds, and at once
    after ``wake()``. A beat that cannot reach the database is logged and tried again at the next one."""

    def __init__(self, engine: Engine, worker: str, held: Callable[[], set[tuple[str, str]]], *,
                 ttl_s: float) -> None:
        self.engine, self.worker, self.held, self.ttl_s = engine, worker, held, ttl_s
        self._wake, self._stop = threading.Event(), threading.Event()
        self._extra: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="qmind-lease-keeper", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def wake(self, task: str | None = None, subject: str | None = None) -> None:
        """Lease now; ``task``/``subject`` is a message just received (it may not be in ``held()`` yet)."""
        if task and subject:
            with self._lock:
                self._extra.add((task, subject))
        self._wake.set()

    def beat(self) -> None:
        with self._lock:
            extra, self._extra = self._extra, set()
        with session_scope(self.engine) as session:
            leases.hold(session, self.worker, self.held() | extra, ttl_s=self.ttl_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - the heartbeat never stops the worker
                log.warning("renewing the leases of %s failed (%s: %s); trying again", self.worker,
                            type(exc).__name__, exc)
            self._wake.wait(self.ttl_s / 3)
            self._wake.clear()

    def stop(self, *, release: bool = True) -> None:
        """Stop beating; with ``release``, drop every lease of this worker (a clean shutdown)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        if release:
            try:
                with session_scope(self.engine) as session:
                    leases.release_all(session, self.worker)
            except Exception as exc:  # noqa: BLE001 - they expire by themselves
                log.warning("dropping the leases of %s failed (%s); they expire by themselves", self.worker, exc)


# ---- wiring into the worker's main process (connected when workers.tasks imports this module) -----------------
_keeper: LeaseKeeper | None = None


def _subject(request) -> tuple[str, str] | None:
    name = getattr(request, "name", None) or ""
    subject = leases.subject_of(name, list(getattr(request, "args", None) or ()), GENERATE_TASK)
    return (name, subject) if name and subject else None


def _held() -> set[tuple[str, str]]:
    """Every message this worker holds: reserved, running, or waiting for an ETA."""
    from celery.worker import state

    return {s for req in list(state.requests.values()) if (s := _subject(req))}


def start_keeper(node: str) -> LeaseKeeper:
    global _keeper
    from .store import get_engine

    config = current_config(app)
    _keeper = LeaseKeeper(get_engine(config), lease_holder(node), _held, ttl_s=config.lease_ttl_s).start()
    return _keeper


def on_received(request) -> None:
    if _keeper is not None and (s := _subject(request)):
        _keeper.wake(*s)


def stop_keeper() -> None:
    global _keeper
    if _keeper is not None:
        _keeper.stop()
        _keeper = None


@signals.worker_ready.connect
def _start_leases(sender=None, **_kwargs) -> None:
    start_keeper(getattr(sender, "hostname", None) or "worker")


@signals.task_received.connect
def _lease_received(request=None, **_kwargs) -> None:
    on_received(request)


@signals.worker_shutdown.connect
def _stop_leases(**_kwargs) -> None:
    stop_keeper()
