"""Queue benchmark: 2,000 small evaluation tasks through Redis and two worker processes, against the same work
called in-process, in one run.

    python benchmarks/queue.py [--tasks 2000] [--workers 2] [--json]

The "small evaluation task" is ``benchmarks/queue_tasks.py``: the production evaluation path (load the candidate,
count the attempt and commit, write the verdict and commit, late acknowledgement) with a fixed verdict instead of
the cascade, so only the queue and the store are measured. Both runs write to the same fresh PostgreSQL database.

Reported: per-task overhead in ms, as wall time ((distributed - in-process) / tasks) and as worker time
((distributed x workers - in-process) / tasks, an upper bound); and lost / duplicated counts (both must be 0):
lost = candidates without a final verdict, duplicated = rows or executions beyond one per candidate.
Target (issue 3): <= 5 ms overhead per task.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import pathlib
import sys


import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

import redis
from sqlalchemy import func, select, text

from db import writes
from db.migrate import upgrade_database
from db.models import Evaluation
from benchmarks.pg import fresh_pg
from db.session import make_engine, session_scope

TARGET_MS = 5.0


def seed(engine, n: int) -> list[int]:
    from workers.evaluation.goals import get_goal

    goal = get_goal("tfim-4")
    ids: list[int] = []
    with session_scope(engine) as s:
        goal_id = writes.upsert_goal(s, goal.to_spec(), spec_hash=goal.spec_hash, exact_energy=goal.exact_energy)
        run_id = writes.create_run(s, goal_names=[goal.name], generator="bench")
        for b in range(0, n, 3):
            rec = writes.record_batch(s, run_id=run_id, goal_id=goal_id, iteration=0, prompt_index=b // 3, batch={
                "generator": "bench", "candidates": [{"temperature": 0.7, "raw": f"# {i}", "code": f"# task {i}"}
                                                     for i in range(b, min(n, b + 3))]})
            ids += rec.candidate_ids
    return ids


def verdicts(engine) -> tuple[int, int, int]:
    """(final rows, all rows, total executions)."""
    with session_scope(engine) as s:
        final = s.execute(select(func.count()).where(Evaluation.status != "pending")).scalar_one()
        rows = s.execute(select(func.count()).select_from(Evaluation)).scalar_one()
        attempts = s.execute(select(func.coalesce(func.sum(Evaluation.attempts), 0))).scalar_one()
    return final, rows, attempts


def start_worker(env: dict, name: str, queue: str, log: pathlib.Path, pool: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--include", "benchmarks.queue_tasks",
            "-Q", queue, "-P", pool, "-c", "1", "-n", name, "-l", "warning", "--without-gossip", "--without-mingle",
            "--without-heartbeat"]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one pool process each)")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo"])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="broker (a key prefix is added)")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="server for the temporary benchmark database")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", action="store_true")
    return parser


def _truncate(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE evaluations RESTART IDENTITY"))


def in_process(engine, url: str, ids: list[int]) -> float:
    """The same work in-process (the task body called directly, no broker): seconds, verdicts then removed."""
    from benchmarks.queue_tasks import evaluate_trivial
    from workers.app import app, configure
    from workers.config import QueueConfig

    configure(app, QueueConfig(broker_url="", database_url=url))
    start = time.perf_counter()
    for cid in ids:
        evaluate_trivial(cid)
    took = time.perf_counter() - start
    assert verdicts(engine)[0] == len(ids), "in-process run did not write every verdict"
    _truncate(engine)
    return took


def distributed(args, engine, url: str, prefix: str, ids: list[int], procs: list[subprocess.Popen]):
    """Through Redis and ``args.workers`` worker processes (appended to ``procs``): (queue config, seconds to
    publish, seconds until every verdict is stored)."""
    from benchmarks.queue_tasks import evaluate_trivial
    from workers.app import app, configure
    from workers.config import QueueConfig

    env = {**os.environ, "QMIND_BROKER_URL": args.redis_url, "QMIND_QUEUE_PREFIX": prefix,
           "QMIND_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    config = QueueConfig(broker_url=args.redis_url, queue_prefix=prefix, database_url=url)
    configure(app, config)
    logs = pathlib.Path(tempfile.mkdtemp(prefix="qbench-"))
    procs += [start_worker(env, f"bench{i}-{prefix}@%h", config.cpu_queue, logs / f"w{i}.log", args.pool)
              for i in range(args.workers)]
    deadline = time.monotonic() + 120
    while len(app.control.ping(timeout=0.5) or []) < args.workers:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit(f"workers did not come up; logs in {logs}")
    t = time.perf_counter()
    for cid in ids:
        evaluate_trivial.apply_async(args=(cid,), queue=config.cpu_queue)
    published = time.perf_counter() - t
    deadline = time.monotonic() + args.timeout
    while verdicts(engine)[0] < len(ids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return config, published, time.perf_counter() - t


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    url, drop = fresh_pg(args.pg_url, prefix="qmind_qbench")
    prefix = f"qbench-{secrets.token_hex(4)}-"
    procs: list[subprocess.Popen] = []
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        ids = seed(engine, args.tasks)
        n = len(ids)
        # in-process before and after the distributed run; the mean of both is the baseline (a shared machine)
        inproc_before = in_process(engine, url, ids)
        config, published, wall = distributed(args, engine, url, prefix, ids, procs)
        time.sleep(1.0)  # let any straggling duplicate show up before counting
        final, rows, executions = verdicts(engine)
        _truncate(engine)
        inproc_after = in_process(engine, url, ids)
        inproc = (inproc_before + inproc_after) / 2
        out = {
            "tasks": n, "workers": args.workers, "pool": args.pool, "task_events": config.task_events,
            "task": "benchmarks.queue_tasks.evaluate_trivial (production evaluation path, fixed verdict)",
            "in_process_s": round(inproc, 3),
            "in_process_runs_s": [round(inproc_before, 3), round(inproc_after, 3)], "distributed_s": round(wall, 3),
            "publish_s": round(published, 3), "in_process_ms_per_task": round(1000 * inproc / n, 3),
            "distributed_ms_per_task": round(1000 * wall / n, 3),
            "overhead_ms_per_task_wall": round(1000 * (wall - inproc) / n, 3),
            "overhead_ms_per_task_worker_time": round(1000 * (wall * args.workers - inproc) / n, 3),
            "throughput_tasks_per_s": round(n / wall, 1),
            "lost": n - final, "duplicated_rows": max(0, rows - n), "duplicated_executions": max(0, executions - n),
        }
        out["target_met"] = (out["overhead_ms_per_task_wall"] <= TARGET_MS and out["lost"] == 0
                             and out["duplicated_rows"] == 0 and out["duplicated_executions"] == 0)
        print(json.dumps(out) if args.json else "\n".join(f"{k:36s} {v}" for k, v in out.items()))
        return 0 if out["lost"] == 0 and out["duplicated_rows"] == 0 else 1
    finally:
        _clean_up(procs, engine, args.redis_url, prefix, drop)


def _clean_up(procs: list[subprocess.Popen], engine, redis_url: str, prefix: str, drop) -> None:
    """Stop the workers (TERM, then KILL after 20 s), drop the database and the run's Redis keys."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    engine.dispose()
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    drop()


if __name__ == "__main__":
    raise SystemExit(main())
