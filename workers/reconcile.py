"""Work whose message the broker lost, found through the store and submitted again.

Redis has no acknowledgements of its own. kombu's Redis transport takes a message off the queue with BRPOP and
only afterwards records it as unacknowledged (a second command); a worker killed between the two, or killed while
the BRPOP reply still sat in its socket, takes the message with it. No worker will run it and no visibility
timeout brings it back (kombu issue #305). It is rare per delivery but real: in the deploy fault test (5,000 tasks, 6 random SIGKILLs of whole workers) 8 of 20 runs lost one
or two messages this way (Redis's AOF shows them pushed and popped, never recorded as unacknowledged).

The store knows what must exist, so the submitter closes the gap. A submitted evaluation with no row in the store
(no attempt ever began) whose message is neither queued nor unacknowledged in Redis, seen so in two scans
``confirm_s`` apart, is lost, and is submitted again. The queue is read only when Redis holds fewer messages
(queued + unacknowledged, two O(1) commands) than there are such candidates, so a long backlog costs nothing. That is harmless even when the scan is wrong: evaluations
are keyed on code + goal + scorer version, and a second message finds the verdict stored. Generation batches
are reconciled the same way (a prompt without a stored batch and no message of its iteration in Redis).

The waiting submitters (``wait_for_evaluations``, ``wait_for_batches`` with ``resubmit``, hence the discovery
loop) do this every ``QMIND_RECONCILE_EVERY_S`` (60 s); ``broker_messages`` returns None for an eager app.
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

from db import writes
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


def broker_count(queue: str, *, celery_app: Celery = app) -> int | None:
    """Messages queued on ``queue`` plus every unacknowledged delivery (two cheap commands), or None as below."""
    config = current_config(celery_app)
    client = _redis_client(celery_app)
    if client is None:
        return None
    try:
        return sum(client.llen(k) for k in _queue_keys(config.queue_prefix, queue)) + \
            client.hlen(config.queue_prefix + "unacked")
    finally:
        client.close()


def broker_messages(queue: str, *, celery_app: Celery = app) -> list[tuple[str, list]] | None:
    """Every task message Redis holds for ``queue``, queued or delivered-but-unacknowledged, as (task, args).

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
        while True:  # unacked holds every queue's deliveries: keep this queue's (routing key = queue name)
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
    """Candidate ids among ``sent`` (evaluation key -> the candidate id its message carried) that are lost:
    no evaluation row, and no message of one of ``task_names`` for that candidate in Redis, twice."""
    config = current_config(celery_app)
    queue = queue or config.cpu_queue
    names = set(task_names)

    def scan() -> set[int]:
        with session_scope(engine) as session:
            have = evaluation_states(session, [(k.code_sha256, k.goal_id, k.scorer_version) for k in sent])
        missing = {cid for k, cid in sent.items() if (k.code_sha256, k.goal_id, k.scorer_version) not in have}
        if not missing:
            return set()
        # Redis holding at least as many messages as there are candidates without a row: most likely nothing is
        # lost, and reading a long queue every minute would cost more than it finds. Skip the scan; a loss shows
        # once the queue has drained below the missing count.
        held_count = broker_count(queue, celery_app=celery_app)
        if held_count is None or held_count >= len(missing):
            return set()
        messages = broker_messages(queue, celery_app=celery_app)
        if messages is None:
            return set()
        held = {args[0] for name, args in messages if name in names and args}
        return missing - held

    return sorted(_confirmed(scan, confirm_s))


def lost_generation(*, run_id: int, goal_id: int, iteration: int, missing_prompts: Callable[[], set[int]],
                    confirm_s: float = 2.0, celery_app: Celery = app) -> set[int]:
    """Prompt indices of one goal's iteration whose batch is not stored and whose generation message is gone."""
    from .app import GENERATE_TASK

    config = current_config(celery_app)

    def scan() -> set[int]:
        missing = missing_prompts()
        if not missing:
            return set()
        messages = broker_messages(config.gpu_queue, celery_app=celery_app)
        if messages is None:
            return set()
        held: set[int] = set()
        for name, args in messages:
            if name == GENERATE_TASK and len(args) >= 4 and tuple(args[:3]) == (run_id, goal_id, iteration):
                held |= {int(p.get("prompt_index", -1)) for p in args[3] if isinstance(p, dict)}
        return missing - held

    return _confirmed(scan, confirm_s)


def describe(resubmitted: list[Any], what: str) -> str:
    return (f"resubmitted {len(resubmitted)} {what} whose message the broker lost (a worker killed between "
            f"taking it off the queue and recording it as unacknowledged): {resubmitted[:10]}"
            + (" ..." if len(resubmitted) > 10 else ""))


def log_resubmitted(resubmitted: list[Any], what: str) -> None:
    if resubmitted:
        log.warning(describe(resubmitted, what))

