"""Leases on task messages: a live worker holds one for every message it has reserved or is running, renews
them with its heartbeat and drops them when the work is done. Unfinished work without a live lease, whose
message does not wait in the queue either, has lost its worker or its message.

A lease names the message by its task name and subject: the candidate id of an evaluation, or
``run_id:goal_id:iteration`` of a generation task (``subject_of``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .base import utcnow
from .models import TaskLease
from .writes import _insert


def subject_of(task: str, args: list | tuple, generation_task: str) -> str | None:
    """The lease subject of a message of ``task`` with positional ``args`` (None when it has none)."""
    if task == generation_task:
        return ":".join(str(a) for a in args[:3]) if len(args) >= 3 else None
    return str(args[0]) if args else None


def generation_subject(run_id: int, goal_id: int, iteration: int) -> str:
    return f"{run_id}:{goal_id}:{iteration}"


def hold(session: Session, worker: str, held: Iterable[tuple[str, str]], *, ttl_s: float) -> None:
    """``worker`` holds exactly ``held`` ((task, subject) pairs) for ``ttl_s`` seconds from now: leases are
    taken or renewed, and the worker's leases on anything else are dropped."""
    now = utcnow()
    held = set(held)
    expires = now + dt.timedelta(seconds=ttl_s)
    if held:
        stmt = _insert(session, TaskLease).values([
            {"task": t, "subject": s, "worker": worker, "acquired_at": now, "expires_at": expires} for t, s in held])
        session.execute(stmt.on_conflict_do_update(index_elements=["task", "subject"],
                                                   set_={"worker": stmt.excluded.worker,
                                                         "expires_at": stmt.excluded.expires_at}))
    mine = session.execute(select(TaskLease.task, TaskLease.subject).where(TaskLease.worker == worker)).all()
    for task, subject in set(mine) - held:
        session.execute(delete(TaskLease).where(TaskLease.task == task, TaskLease.subject == subject,
                                                TaskLease.worker == worker))


def release_all(session: Session, worker: str) -> None:
    """Drop every lease of ``worker`` (a clean shutdown)."""
    session.execute(delete(TaskLease).where(TaskLease.worker == worker))


def live(session: Session, tasks: Collection[str], subjects: Collection[str]) -> set[str]:
    """The subjects among ``subjects`` that a live worker holds a message of one of ``tasks`` for."""
    subjects, out = list(subjects), set()
    for start in range(0, len(subjects), 500):
        out |= set(session.execute(select(TaskLease.subject).where(
            TaskLease.task.in_(list(tasks)), TaskLease.subject.in_(subjects[start:start + 500]),
            TaskLease.expires_at >= utcnow())).scalars())
    return out
