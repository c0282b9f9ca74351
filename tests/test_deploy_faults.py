"""Delivery guarantees of the deployed queue under faults, with real parts: a Redis server of the test's own
(password, AOF, noeviction, as in deploy/), a fresh PostgreSQL database, real Celery worker processes.

The task is the production evaluation path (``workers.tasks.run_evaluation``: attempt counted and committed,
verdict written and committed, late acknowledgement) with the fixed verdict of ``benchmarks/queue_tasks.py``
instead of the evaluation cascade, so thousands of tasks fit in a test; only the evaluator is small, the
delivery machinery is the real one. Visibility timeout and time limits are short (8 s, 4 s) so a redelivery
happens within the test.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from faulthelpers import OWN_REDIS, RedisServer, kill_whole_worker
from queuehelpers import Worker, configured_app, new_prefix, queue_env, wait_until
from sqlalchemy import text
from storehelpers import create_pg_database, drop_pg_database

from db import writes
from db.migrate import upgrade_database
from db.session import make_engine, session_scope

own_redis_fixture = OWN_REDIS

pytestmark = pytest.mark.integration

VISIBILITY_S = 8.0
LIMITS = {"QMIND_EVALUATE_SOFT_TIME_LIMIT_S": "3", "QMIND_EVALUATE_TIME_LIMIT_S": "4",
          "QMIND_GENERATE_SOFT_TIME_LIMIT_S": "5", "QMIND_GENERATE_TIME_LIMIT_S": "6",
          "QMIND_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S), "QMIND_UNACKED_RESTORE_INTERVAL_S": "1",
          "QMIND_MAX_ATTEMPTS": "10"}


@pytest.fixture(scope="module")
def database():
    name, url = create_pg_database("qmind_deploy")
    engine = make_engine(url)
    upgrade_database(engine)
    engine.dispose()
    yield url
    drop_pg_database(name)


@dataclass
class Cluster:
    """One test's broker, store and workers."""

    redis: RedisServer
    engine: object
    env: dict
    logs: Path
    workers: list = field(default_factory=list)

    def worker(self, concurrency: int = 1) -> Worker:
        w = Worker(self.env, self.logs, concurrency=concurrency, celery=True,
                   extra=("--include", "benchmarks.queue_tasks"))
        self.workers.append(w)
        return w

    def submit(self, ids: list[int], *, sleep_s: float = 0.0) -> None:
        from benchmarks.queue_tasks import evaluate_trivial

        queue = self.env["QMIND_QUEUE_PREFIX"] + "cpu"
        for cid in ids:
            evaluate_trivial.apply_async(args=(cid,), kwargs={"sleep_s": sleep_s}, queue=queue)

    def broker_backlog(self) -> dict:
        """Messages still queued or delivered-but-unacknowledged in Redis (both 0 once the queue drained)."""
        prefix, client = self.env["QMIND_QUEUE_PREFIX"], self.redis.client()
        # kombu's global key prefix goes in front of every key, and the queue's own name carries the prefix too
        return {"queued": client.llen(prefix + prefix + "cpu"), "unacked": client.hlen(prefix + "unacked")}


@pytest.fixture
def cluster(database, own_redis, tmp_path):
    engine = make_engine(database)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE evaluations, candidates, generation_batches, runs, model_versions, goals "
                          "RESTART IDENTITY CASCADE"))
    env = queue_env(database, new_prefix(), QMIND_BROKER_URL=own_redis.url, **LIMITS)
    c = Cluster(own_redis, engine, env, tmp_path)
    try:
        with configured_app(env):
            yield c
    finally:
        for w in c.workers:
            w.stop()
        engine.dispose()


def seed_candidates(engine, n: int, *, per_batch: int = 100) -> list[int]:
    """``n`` candidates with distinct code (so each needs its own evaluation) on goal tfim-4."""
    from workers.evaluation.goals import get_goal

    goal = get_goal("tfim-4")
    ids: list[int] = []
    with session_scope(engine) as s:
        goal_id = writes.upsert_goal(s, goal.to_spec(), spec_hash=goal.spec_hash, exact_energy=goal.exact_energy)
        run_id = writes.create_run(s, goal_names=[goal.name], generator="deploy-fault-test")
        for b, start in enumerate(range(0, n, per_batch)):
            cands = [{"temperature": 0.7, "raw": f"# {i}", "code": f"# deploy fault task {i}\n"}
                     for i in range(start, min(n, start + per_batch))]
            ids += writes.record_batch(s, run_id=run_id, goal_id=goal_id, iteration=0, prompt_index=b,
                                       batch={"generator": "deploy-fault-test", "candidates": cands}).candidate_ids
    return ids


def tally(engine) -> dict:
    """Per-candidate evaluation counts and totals, straight from SQL."""
    with engine.connect() as conn:
        per_candidate = conn.execute(text("""
            SELECT c.id, count(e.id) AS n, min(e.status) AS status, coalesce(max(e.attempts), 0) AS attempts
            FROM candidates c JOIN generation_batches b ON b.id = c.batch_id
            LEFT JOIN evaluations e ON e.code_sha256 = c.code_sha256 AND e.goal_id = b.goal_id
            GROUP BY c.id""")).all()
        rows = conn.execute(text("SELECT count(*) FROM evaluations")).scalar_one()
        attempts = conn.execute(text("SELECT coalesce(sum(attempts), 0) FROM evaluations")).scalar_one()
    statuses: dict[str, int] = {}
    for r in per_candidate:
        statuses[r.status or "none"] = statuses.get(r.status or "none", 0) + 1
    return {
        "candidates": len(per_candidate),
        "evaluations": rows,
        "final": sum(1 for r in per_candidate if r.n == 1 and r.status not in (None, "pending")),
        "lost": sum(1 for r in per_candidate if r.n == 0 or r.status == "pending"),
        "duplicated": sum(1 for r in per_candidate if r.n > 1) + max(0, rows - len(per_candidate)),
        "statuses": statuses,
        "executions": int(attempts),
        "redelivered_candidates": sum(1 for r in per_candidate if r.attempts > 1),
        "attempts": {r.id: r.attempts for r in per_candidate},
        "not_final": {r.id for r in per_candidate if r.n != 1 or r.status in (None, "pending")},
    }


def sent_keys(engine) -> dict:
    """Evaluation key -> candidate id of every seeded candidate (each has its own code)."""
    from workers.evaluation.results import SCORER_VERSION

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT c.id, c.code_sha256, b.goal_id FROM candidates c "
                                 "JOIN generation_batches b ON b.id = c.batch_id")).all()
    return {writes.EvaluationKey(r.code_sha256, r.goal_id, SCORER_VERSION): r.id for r in rows}


def wait_for_all_final(c: Cluster, n: int, *, timeout: float, reconcile_every_s: float = 0.0,
                       resubmitted: list | None = None) -> dict:
    """Wait until every candidate has one final evaluation. With ``reconcile_every_s``, do what the discovery
    loop does while it waits: find messages Redis lost (``workers.reconcile``) and submit them again."""
    from benchmarks.queue_tasks import BENCH_TASK
    from workers.reconcile import lost_evaluations

    last: dict = {}
    sent = sent_keys(c.engine) if reconcile_every_s else {}
    next_reconcile = [time.monotonic() + reconcile_every_s]

    def done():
        last.update(tally(c.engine))
        if last["final"] == n:
            return dict(last)
        if reconcile_every_s and time.monotonic() >= next_reconcile[0]:
            lost = lost_evaluations({k: i for k, i in sent.items() if i in last["not_final"]},
                                    task_names=[BENCH_TASK], confirm_s=1.0, engine=c.engine)
            if lost:
                c.submit(lost)
                if resubmitted is not None:
                    resubmitted.extend(lost)
            next_reconcile[0] = time.monotonic() + reconcile_every_s
        return False

    try:
        return wait_until(done, timeout=timeout, interval=0.5, what=f"all {n} evaluations to be final")
    except AssertionError as exc:  # say where the missing ones are: still in Redis, or gone
        missing = [(i, last["attempts"][i]) for i in sorted(last.get("not_final", ()))[:20]]
        raise AssertionError(f"{exc}; last tally: { {k: v for k, v in last.items() if k not in ('attempts', 'not_final')} }"
                             f"; broker: {c.broker_backlog()}; first candidates not final (id, attempts): {missing}; "
                             f"workers alive: {[w.name for w in c.workers if w.proc.poll() is None]}") from None


def wait_drained(c: Cluster, *, timeout: float) -> dict:
    """Redeliveries of already-finished tasks may still be on their way: wait until Redis holds nothing."""
    return wait_until(lambda: (b := c.broker_backlog()) == {"queued": 0, "unacked": 0} and b, timeout=timeout,
                      interval=0.5, what="the queue to drain (nothing queued or unacknowledged)")


# ---- a whole worker killed --------------------------------------------------------------------------------------
def test_a_killed_worker_leaves_its_tasks_to_another_after_the_visibility_timeout_and_one_evaluation_each(cluster):
    ids = seed_candidates(cluster.engine, 6)
    doomed = cluster.worker(concurrency=2).wait_ready()
    cluster.submit(ids, sleep_s=2.0)

    def in_flight():
        with cluster.engine.connect() as conn:
            rows = conn.execute(text("SELECT code_sha256, updated_at FROM evaluations WHERE status = 'pending'"))
            return {r.code_sha256: r.updated_at for r in rows}

    started = wait_until(lambda: len(in_flight()) == 2 and in_flight(), timeout=60, what="two tasks running")
    kill_whole_worker(doomed.proc)  # main process and both pool children, mid-task
    killed_at = time.time()
    assert tally(cluster.engine)["final"] == 0, "the killed tasks must not have finished"
    assert cluster.broker_backlog() == {"queued": 4, "unacked": 2}, "two delivered and unacknowledged, four queued"

    survivor = cluster.worker(concurrency=2).wait_ready()
    result = wait_for_all_final(cluster, len(ids), timeout=VISIBILITY_S + 60)
    backlog = wait_drained(cluster, timeout=VISIBILITY_S + 30)

    assert result["evaluations"] == len(ids) and result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["statuses"] == {"valid": len(ids)}
    with cluster.engine.connect() as conn:
        rows = {r.code_sha256: r for r in conn.execute(text(
            "SELECT code_sha256, attempts, worker_host, finished_at FROM evaluations"))}
    for sha, first_start in started.items():
        row = rows[sha]
        assert row.attempts == 2, "the killed attempt and the one that finished"
        assert row.worker_host == survivor.name
        waited = (row.finished_at - first_start).total_seconds()
        assert waited >= VISIBILITY_S, f"redelivered after {waited:.1f} s, before the visibility timeout"
    assert sorted(r.attempts for sha, r in rows.items() if sha not in started) == [1] * (len(ids) - 2)
    assert backlog == {"queued": 0, "unacked": 0}
    print(f"\nkilled worker at {killed_at:.1f}; its 2 tasks were finished by {survivor.name} after the "
          f"{VISIBILITY_S:g} s visibility timeout; {len(ids)} candidates -> {result['evaluations']} evaluations")


# ---- Redis restarted ----------------------------------------------------------------------------------------------
def test_a_redis_restart_mid_run_loses_and_duplicates_no_evaluation(cluster):
    n = 60
    ids = seed_candidates(cluster.engine, n)
    workers = [cluster.worker(concurrency=2).wait_ready() for _ in range(2)]
    cluster.submit(ids, sleep_s=0.3)
    wait_until(lambda: tally(cluster.engine)["final"] >= 10, timeout=60, what="the run to get going")
    before = cluster.broker_backlog()
    run_id = cluster.redis.run_id()
    assert before["queued"] > 0, "the restart must happen while tasks are still queued"

    cluster.redis.restart(down_s=3.0)  # SIGTERM (as docker stop / a pod eviction), 3 s down, start again
    assert cluster.redis.run_id() != run_id
    assert "append only file" in cluster.redis.log.read_text().lower(), "Redis must have reloaded its AOF"

    result = wait_for_all_final(cluster, n, timeout=VISIBILITY_S + 120)
    wait_drained(cluster, timeout=VISIBILITY_S + 30)
    assert result["evaluations"] == n and result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["statuses"] == {"valid": n}
    dead = [w for w in workers if w.proc.poll() is not None]
    assert not dead, "workers reconnect instead of dying:\n" + "\n".join(w.output()[-3000:] for w in dead)
    print(f"\nRedis restarted with {before['queued']} tasks queued and {before['unacked']} unacknowledged; "
          f"{n} candidates -> {result['evaluations']} evaluations, {result['executions'] - n} re-executions")


# ---- load with random kills ---------------------------------------------------------------------------------------
LOAD_TASKS = 5000
LOAD_WORKERS = 3
LOAD_KILLS = 6


def test_five_thousand_tasks_survive_random_worker_kills_with_exactly_one_evaluation_each(cluster, tmp_path):
    rng = random.Random(7)
    ids = seed_candidates(cluster.engine, LOAD_TASKS)
    live = [cluster.worker(concurrency=1).wait_ready() for _ in range(LOAD_WORKERS)]
    t0 = time.monotonic()
    published_s: list[float] = []

    def publish() -> None:  # the discovery loop submits while workers already run (and die)
        cluster.submit(ids)
        published_s.append(time.monotonic() - t0)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    kills = []
    while len(kills) < LOAD_KILLS and tally(cluster.engine)["final"] < LOAD_TASKS:
        time.sleep(rng.uniform(1.0, 3.0))
        victim = live.pop(rng.randrange(len(live)))
        kill_whole_worker(victim.proc)
        kills.append({"at_s": round(time.monotonic() - t0, 2), "worker": victim.name,
                      "done_before": tally(cluster.engine)["final"]})
        live.append(cluster.worker(concurrency=1).wait_ready())  # a replacement, as a supervisor would start

    publisher.join(300)
    assert published_s, "publishing did not finish"
    resubmitted: list[int] = []
    result = wait_for_all_final(cluster, LOAD_TASKS, timeout=VISIBILITY_S + 300, reconcile_every_s=5.0,
                                resubmitted=resubmitted)
    done_s = time.monotonic() - t0
    backlog = wait_drained(cluster, timeout=VISIBILITY_S + 60)
    drained_s = time.monotonic() - t0

    figures = {
        "tasks": LOAD_TASKS, "worker_processes": LOAD_WORKERS, "sigkills": len(kills), "kills": kills,
        "visibility_timeout_s": VISIBILITY_S, "publish_s": round(published_s[0], 2),
        "all_final_s": round(done_s, 2), "drained_s": round(drained_s, 2),
        "throughput_tasks_per_s": round(LOAD_TASKS / done_s, 1),
        "candidates": result["candidates"], "evaluations": result["evaluations"], "lost": result["lost"],
        "duplicated": result["duplicated"], "statuses": result["statuses"],
        "executions": result["executions"], "re_executions": result["executions"] - LOAD_TASKS,
        "redelivered_candidates": result["redelivered_candidates"], "left_in_broker": backlog,
        "lost_by_redis_and_resubmitted": resubmitted,
        "note": "shared 2-core machine: timings are noisy",
    }
    path = tmp_path / "load-figures.json"
    path.write_text(json.dumps(figures, indent=2))
    print("\nload test figures (" + str(path) + "):\n" + json.dumps({k: v for k, v in figures.items()
                                                                     if k != "kills"}, indent=2))

    assert len(kills) == LOAD_KILLS, "the run ended before every planned kill"
    assert result["candidates"] == LOAD_TASKS == result["evaluations"]
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["statuses"] == {"valid": LOAD_TASKS}
    assert backlog == {"queued": 0, "unacked": 0}
    # a re-execution only happens to a task whose worker was killed under it: at most one per worker per kill
    assert result["executions"] - LOAD_TASKS <= LOAD_KILLS


def test_the_fault_tests_restart_their_own_redis_not_the_shared_one(own_redis):
    assert own_redis.port != 6379
    assert own_redis.client().config_get("appendonly")["appendonly"] == "yes"
    assert own_redis.client().config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    import redis

    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=own_redis.port).ping()
