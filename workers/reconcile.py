"""Work whose worker died, or whose message the broker lost, found through the store and submitted again.

Redis has no acknowledgements of its own. kombu's Redis transport takes a message off the queue with BRPOP and
only afterwards records it as unacknowledged (a second command); a worker killed between the two, or killed while
the BRPOP reply still sat in its socket, takes the message with it. No worker will run it and no visibility
timeout brings it back (kombu issue #305). In the deploy fault test (5,000 tasks, 6 random SIGKILLs of whole
workers) 8 of 20 runs lost one or two messages this way. A Redis restarted without persistence loses every
message; and a whole worker that dies leaves what it had reserved or begun in Redis's unacknowledged set, where
it returns only after the visibility timeout (an hour by default).

The store knows what must exist, and each live worker keeps a lease (``task_leases``, renewed by its heartbeat,
``workers.leases``) on every message it holds. Unfinished work (no final verdict, or no stored batch) that no
live worker holds and whose message does not wait in the queue, seen so in two scans ``confirm_s`` apart, is
lost, and is submitted again. The queue is read only when it holds fewer messages (O(1) commands) than there
are such candidates, so a long backlog costs nothing. A wrong guess is harmless: evaluations are keyed on
code + goal + scorer version, and a second message finds the verdict stored.

The waiting submitters (``wait_for_evaluations``, ``wait_for_batches`` with ``resubmit``, hence the discovery
loop) do this every ``QMIND_RECONCILE_EVERY_S`` (15 s); ``broker_messages`` returns None for an eager app.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from celery import Celery
from sqlalchemy import Engine

from db import leases, writes
from db.models import FINAL_STATUSES
from db.queries import evaluation_states
from db.session import session_scope

from .app import app, current_config

log = logging.getLogger(__name__)

# kombu's Redis transport: priority sub-queues are "<queue>\x06\x16<priority>" (steps 0, 3, 6, 9), the
# unacknowledged messages one hash "unacked" of JSON [message, exchange, routing_key]; all keys carry the
# transport's global key prefix.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
_SCAN_CHUNK = 1000


def _redis_client(celery_app: Celery) -> redis.Redis | None:
    """A client of the app's Redis broker; None when the app is eager or its broker is not Redis."""
    config = current_config(celery_app)
    if config.eager or not config.broker_url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return redis.Redis.from_url(config.broker_url, socket_timeout=30, socket_connect_timeout=10)


def _decode(raw: bytes | str | list | dict) -> tuple[str, list] | None:
    """(task name, positional args) of one kombu message as Redis holds it (raw or already parsed), or None when
    it is not a task."""
    try:
        message = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
        if isinstance(message, list):  # the unacked hash holds [message, exchange, routing_key]
            message = message[0]
        name = (message.get("headers") or {}).get("task")
        body = message["body"]
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        decoded = json.loads(body)
        args = decoded[0] if isinstance(decoded, list) else decoded.get("args", [])
        return (str(name), list(args)) if name else None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def _queue_keys(prefix: str, queue: str) -> list[str]:
    return [prefix + queue] + [f"{prefix}{queue}{_PRIORITY_SEP}{p}" for p in _PRIORITY_STEPS]


def broker_count(queue: str, *, celery_app: Celery = app, unacked: bool = True) -> int | None:
    """Messages queued on ``queue`` plus (with ``unacked``) every unacknowledged delivery (cheap commands), or
    None as below."""
    config = current_config(celery_app)
    client = _redis_client(celery_app)
    if client is None:
        return None
    try:
        return sum(client.llen(k) for k in _queue_keys(config.queue_prefix, queue)) + \
            (client.hlen(config.queue_prefix + "unacked") if unacked else 0)
    finally:
        client.close()


def broker_messages(queue: str, *, celery_app: Celery = app,
                    unacked: bool = True) -> list[tuple[str, list]] | None:
    """Every task message Redis holds for ``queue``, queued or (with ``unacked``) delivered-but-unacknowledged,
    as (task, args).

    None when the app is eager (no broker) or the broker URL is not a Redis one.
    """
    client = _redis_client(celery_app)
    if client is None:
        return None
    prefix = current_config(celery_app).queue_prefix
    out: list[tuple[str, list]] = []
    try:
        for key in _queue_keys(prefix, queue):
            length = client.llen(key)
            for start in range(0, length, _SCAN_CHUNK):
                out += [m for raw in client.lrange(key, start, start + _SCAN_CHUNK - 1) if (m := _decode(raw))]
        cursor = 0
        while unacked:  # unacked holds every queue's deliveries: keep this queue's (routing key = queue name)
            cursor, entries = client.hscan(prefix + "unacked", cursor, count=_SCAN_CHUNK)
            for raw in entries.values():
                try:
                    entry = json.loads(raw)
                    routing_key = entry[2]
                except (ValueError, IndexError, TypeError, KeyError):
                    continue
                if routing_key == queue and (m := _decode(entry)):
                    out.append(m)
            if cursor == 0:
                break
    finally:
        client.close()
    return out


def _confirmed(scan: Callable[[], set], confirm_s: float) -> set:
    """What two scans ``confirm_s`` apart agree on (a delivery caught between BRPOP and its unacked record,
    or a task that finished between the store read and the broker read, shows up in one scan only)."""
    first = scan()
    if not first:
        return set()
    time.sleep(confirm_s)
    return first & scan()


def lost_evaluations(sent: Mapping[writes.EvaluationKey, int], *, task_names: Iterable[str], queue: str | None = None,
                     confirm_s: float = 2.0, celery_app: Celery = app, engine: Engine) -> list[int]:
    """Candidate ids among ``sent`` (evaluation key -> the candidate id its message carried) whose work is lost:
    no final verdict, no live worker holding a lease on a message of one of ``task_names`` for it, and no such
    message waiting in the queue, twice ``confirm_s`` apart.

    That covers a message Redis lost (a worker killed between BRPOP and its unacked record; a Redis restarted
    without persistence) and the work of a dead worker, begun or only reserved: its leases expired, and its
    deliveries in Redis's unacknowledged set do not count (they would return only after the visibility timeout,
    and then find the verdict stored)."""
    config = current_config(celery_app)
    queue = queue or config.cpu_queue
    names = set(task_names)
    keys = {(k.code_sha256, k.goal_id, k.scorer_version): cid for k, cid in sent.items()}

    def scan() -> set[int]:
        with session_scope(engine) as session:
            states = evaluation_states(session, list(keys))
            unfinished = {cid for k, cid in keys.items() if states.get(k) not in FINAL_STATUSES}
            if not unfinished:
                return set()
            held = {int(s) for s in leases.live(session, names, [str(c) for c in unfinished])}
        orphans = unfinished - held
        # Redis queueing at least as many messages as there are such candidates: most likely they wait there,
        # and reading a long queue every reconciliation would cost more than it finds. A loss shows once the
        # queue has drained below that count.
        queued = broker_count(queue, celery_app=celery_app, unacked=False)
        if not orphans or queued is None or queued >= len(orphans):
            return set()
        messages = broker_messages(queue, celery_app=celery_app, unacked=False) or []
        return orphans - {args[0] for name, args in messages if name in names and args}

    return sorted(_confirmed(scan, confirm_s))


def lost_generation(*, run_id: int, goal_id: int, iteration: int, missing_prompts: Callable[[], set[int]],
                    engine: Engine, confirm_s: float = 2.0, celery_app: Celery = app,
                    queue: str | None = None) -> set[int]:
    """Prompt indices of one goal's iteration whose batch is not stored, while no live worker holds a lease on the
    iteration's generation message and none waits in ``queue`` (default: the gpu queue; model-free generation
    runs on the cpu queue): Redis lost it, or the worker that held it died."""
    from .app import GENERATE_TASK

    queue = queue or current_config(celery_app).gpu_queue

    def scan() -> set[int]:
        missing = missing_prompts()
        if not missing:
            return set()
        with session_scope(engine) as session:  # a live worker holds its message (reserved or running)
            if leases.live(session, [GENERATE_TASK], [leases.generation_subject(run_id, goal_id, iteration)]):
                return set()
        messages = broker_messages(queue, celery_app=celery_app, unacked=False)
        if messages is None:
            return set()
        held: set[int] = set()
        for name, args in messages:
            if name == GENERATE_TASK and len(args) >= 4 and tuple(args[:3]) == (run_id, goal_id, iteration):
                held |= {int(p.get("prompt_index", -1)) for p in args[3] if isinstance(p, dict)}
        return missing - held

    return _confirmed(scan, confirm_s)


def describe(resubmitted: list[Any], what: str) -> str:
    return (f"resubmitted {len(resubmitted)} {what} whose worker died or whose message the broker lost (no "
            f"live lease, nothing queued): {resubmitted[:10]}"
            + (" ..." if len(resubmitted) > 10 else ""))


def log_resubmitted(resubmitted: list[Any], what: str) -> None:
    if resubmitted:
        log.warning(describe(resubmitted, what))

