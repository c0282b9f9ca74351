"""The queue for real: Redis, PostgreSQL and ``qmind worker`` processes started here. Faults are real too:
SIGKILL of pool children, a broker port that is closed, a database that refuses connections."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from queuehelpers import (
    Worker,
    configured_app,
    delete_prefix,
    new_prefix,
    queue_env,
    redis_client,
    wait_until,
)
from sqlalchemy import func, select
from storehelpers import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    add_batch,
    add_goal,
    create_pg_database,
    drop_pg_database,
    free_port,
    new_run,
)

from db import writes
from db.migrate import upgrade_database
from db.models import Candidate, Evaluation, GenerationBatch, Run
from db.session import make_engine, session_scope
from tests.ansatz_library import LAYERED

pytestmark = pytest.mark.integration

VALID = LAYERED  # a valid candidate


def variant(i: int, *, sleep: float = 0.0) -> str:
    """A distinct valid candidate (its own code hash); ``sleep`` seconds at import make it slow."""
    head = f"import time\ntime.sleep({sleep})\n" if sleep else ""
    return f"{head}# variant {i}\n{VALID}"


@pytest.fixture
def bench(tmp_path):
    """A fresh PostgreSQL database and Redis prefix for one test; everything is removed afterwards."""
    name, url = create_pg_database("qmind_q")
    engine = make_engine(url)
    upgrade_database(engine)
    prefix = new_prefix()
    env = queue_env(url, prefix, QMIND_BP_SAMPLES="16", QMIND_VQE_RESTARTS="1")
    workers: list[Worker] = []

    class Bench:
        pass

    b = Bench()
    b.engine, b.env, b.db_name, b.url, b.logs = engine, env, name, url, tmp_path

    def worker(**kw) -> Worker:
        w = Worker(env, tmp_path, **kw)
        workers.append(w)
        return w

    b.worker = worker
    try:
        with configured_app(env):
            yield b
    finally:
        for w in workers:
            w.stop()
        engine.dispose()
        delete_prefix(prefix)
        drop_pg_database(name)


def seed_candidates(engine, codes, *, goal: str = "tfim-4") -> list[int]:
    with session_scope(engine) as s:
        goal_id, run_id = add_goal(s, goal), new_run(s)
        ids: list[int] = []
        for start in range(0, len(codes), 3):
            rec = add_batch(s, run_id=run_id, goal_id=goal_id, codes=list(codes[start:start + 3]),
                            prompt_index=start // 3)
            ids += rec.candidate_ids
    return ids


def evaluation_of(engine, code: str):
    with session_scope(engine) as s:
        return s.execute(select(Evaluation.status, Evaluation.attempts, Evaluation.errors)
                         .where(Evaluation.code_sha256 == writes.code_sha256(code))).one_or_none()


def count_evaluations(engine) -> int:
    with session_scope(engine) as s:
        return s.execute(select(func.count()).select_from(Evaluation)).scalar_one()


def test_a_run_completes_on_cpu_workers_alone_with_the_model_free_generator(bench):
    from workers.submit import evaluate_candidates, submit_generation, wait_for_batches

    cpu = bench.worker(queues="cpu", concurrency=2)
    cpu.wait_ready()
    with session_scope(bench.engine) as s:
        goal_id = add_goal(s, "tfim-4")
        run_id = writes.create_run(s, goal_names=["tfim-4"], generator="procedural", seed=5)
    for iteration in range(2):
        prompts = [{"prompt_index": i, "memory_context": "", "seed": 10 * iteration + i} for i in range(2)]
        submit_generation(run_id=run_id, goal_id=goal_id, iteration=iteration, prompts=prompts,
                          generator={"generator": "procedural"})
        batches = wait_for_batches(run_id=run_id, goal_id=goal_id, iteration=iteration, prompt_indices=[0, 1],
                                   timeout_s=120, queue=bench.env["QMIND_QUEUE_PREFIX"] + "cpu")
        assert [b.status for b in batches] == ["done", "done"], [b.error for b in batches]
        ids = [c for b in batches for c in b.candidate_ids]
        statuses = evaluate_candidates(ids, timeout_s=300)
        assert set(statuses) == set(ids) and "queued" not in statuses.values()
        with session_scope(bench.engine) as s:
            writes.update_run(s, run_id, iteration=iteration)
    with session_scope(bench.engine) as s:
        writes.update_run(s, run_id, status="completed")
    with session_scope(bench.engine) as s:
        run = s.get(Run, run_id)
        assert run.status == "completed" and run.iteration == 1 and run.ended_at is not None
        batches = s.execute(select(GenerationBatch)).scalars().all()
        assert len(batches) == 4 and {b.worker_host for b in batches} == {cpu.name}
        keys = s.execute(select(func.count(func.distinct(Candidate.code_sha256)))
                         .where(Candidate.code.is_not(None))).scalar_one()
        evaluations = s.execute(select(Evaluation)).scalars().all()
        assert len(evaluations) == keys > 0
        assert all(e.status != "pending" for e in evaluations)
        assert {e.worker_host for e in evaluations} == {cpu.name}
        assert any(e.status == "valid" for e in evaluations)


def test_a_worker_child_killed_mid_evaluation_is_redelivered_and_leaves_exactly_one_evaluation(bench):
    from workers.submit import submit_evaluations, wait_for_evaluations

    code = variant(1, sleep=4)
    [cid] = seed_candidates(bench.engine, [code])
    worker = bench.worker(concurrency=1).wait_ready()
    tickets = submit_evaluations([cid])
    wait_until(lambda: (evaluation_of(bench.engine, code) or ("", 0))[1] == 1, timeout=60,
               what="the evaluation to start")
    killed = worker.kill_child()
    statuses = wait_for_evaluations(tickets, timeout_s=180)
    assert statuses == {cid: "valid"}, evaluation_of(bench.engine, code)
    status, attempts, _ = evaluation_of(bench.engine, code)
    assert (status, attempts) == ("valid", 2)
    assert count_evaluations(bench.engine) == 1
    assert f"pid:{killed} exited with 'signal 9 (SIGKILL)'" in worker.output()


def test_the_same_submission_twice_leaves_one_evaluation_per_code(bench):
    from workers.submit import submit_evaluations, wait_for_evaluations

    codes = [variant(i) for i in range(3)] + [variant(0)]  # the last one repeats the first
    ids = seed_candidates(bench.engine, codes)
    bench.worker(concurrency=1).wait_ready()
    bench.worker(concurrency=1).wait_ready()
    first = submit_evaluations(ids)
    second = submit_evaluations(ids)
    assert wait_for_evaluations(first + second, timeout_s=300) == {i: "valid" for i in ids}
    assert count_evaluations(bench.engine) == 3


def test_a_broker_that_is_down_fails_the_submission_quickly_and_writes_nothing(bench):
    from workers.submit import QueueUnavailableError, submit_evaluations, submit_generation

    ids = seed_candidates(bench.engine, [variant(i) for i in range(3)])
    dead = queue_env(bench.url, new_prefix(), QMIND_BROKER_URL=f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    with configured_app(dead):
        start = time.monotonic()
        with pytest.raises(QueueUnavailableError) as err:
            submit_evaluations(ids)
        elapsed = time.monotonic() - start
        with pytest.raises(QueueUnavailableError):
            submit_generation(run_id=1, goal_id=1, iteration=0, prompts=[{"prompt_index": 0}],
                              generator={"generator": "procedural"})
    message = str(err.value)
    assert elapsed < 20, f"took {elapsed:.1f} s"
    assert "cannot reach the broker at redis://:***@127.0.0.1" in message and "Nothing was submitted" in message
    assert "s3cret" not in message
    assert count_evaluations(bench.engine) == 0
    with session_scope(bench.engine) as s:
        assert s.execute(select(func.count()).select_from(GenerationBatch)).scalar_one() == 1


def _block_database(name: str, block: bool) -> None:
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if block else "true"}')
        if block:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def test_a_database_outage_during_a_write_is_retried_and_stored_once(bench):
    from workers.submit import submit_evaluations, wait_for_evaluations

    code = variant(2, sleep=3)
    [cid] = seed_candidates(bench.engine, [code])
    worker = bench.worker(concurrency=1).wait_ready()
    tickets = submit_evaluations([cid])
    wait_until(lambda: (evaluation_of(bench.engine, code) or ("", 0))[1] == 1, timeout=60,
               what="the evaluation to start")
    bench.engine.dispose()
    _block_database(bench.db_name, True)
    try:
        wait_until(lambda: "transient error in qmind.evaluate_candidate" in worker.output(), timeout=120,
                   interval=0.2, what="the worker to meet the outage")
    finally:
        _block_database(bench.db_name, False)
    assert wait_for_evaluations(tickets, timeout_s=180) == {cid: "valid"}, evaluation_of(bench.engine, code)
    assert count_evaluations(bench.engine) == 1
    status, attempts, _ = evaluation_of(bench.engine, code)
    assert status == "valid" and attempts >= 2


def test_a_poison_candidate_is_failed_after_max_attempts_and_the_queue_keeps_moving(bench):
    from workers.submit import submit_evaluations, wait_for_evaluations

    poison = variant(99, sleep=25)
    good = [variant(i) for i in range(3)]
    ids = seed_candidates(bench.engine, [poison, *good])
    worker = bench.worker(concurrency=1).wait_ready()
    tickets = submit_evaluations(ids)
    kills, seen = 0, 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill the worker child every time it starts the poison candidate
        row = evaluation_of(bench.engine, poison)
        if row is not None and row[0] != "pending":
            break
        if row is not None and row[1] > seen:
            seen = row[1]
            worker.kill_child()
            kills += 1
        time.sleep(0.05)
    statuses = wait_for_evaluations(tickets, timeout_s=300)
    assert statuses[ids[0]] == "failed"
    assert [statuses[i] for i in ids[1:]] == ["valid"] * 3
    _, attempts, errors = evaluation_of(bench.engine, poison)
    assert kills == 3 and attempts == 4 and "gave up after 3 attempts" in errors[0]
    assert count_evaluations(bench.engine) == 4


def test_each_task_kind_lands_only_in_its_own_queue(bench):
    """Both queues are declared (a worker consumes each); a generation task and an evaluation task are then
    published with no worker running: Redis holds exactly one message in each queue."""
    import redis as redis_lib
    from queuehelpers import REDIS_DB, REDIS_HOST, REDIS_PORT

    from workers.submit import submit_evaluations, submit_generation

    for queues in ("cpu", "gpu"):  # declare both queues and their bindings, then stop
        bench.worker(queues=queues).wait_ready().stop()
    [cid] = seed_candidates(bench.engine, [variant(7)])
    submit_evaluations([cid])
    submit_generation(run_id=1, goal_id=1, iteration=0, prompts=[{"prompt_index": 0}],
                      generator={"generator": "transformers"})  # a model: the gpu queue
    client = redis_lib.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    prefix = bench.env["QMIND_QUEUE_PREFIX"]
    assert client.llen(f"{prefix}{prefix}cpu") == 1 and client.llen(f"{prefix}{prefix}gpu") == 1


def test_a_submitted_message_carries_no_time_limits_so_the_workers_own_apply(bench):
    """Celery caches a task's publishing options (limits included) and a worker obeys the limits in a message:
    a submission must not carry limits from an earlier configuration of the submitting process."""
    import json

    import redis as redis_lib
    from queuehelpers import REDIS_DB, REDIS_HOST, REDIS_PORT

    from workers.app import EVALUATE_TASK, app, configure
    from workers.config import QueueConfig
    from workers.submit import submit_evaluations

    fields = {k[len("QMIND_"):].lower(): v for k, v in bench.env.items() if k.startswith("QMIND_")}
    configure(app, QueueConfig(**{**fields, "evaluate_soft_time_limit_s": 3, "evaluate_time_limit_s": 4}))
    app.tasks[EVALUATE_TASK]._get_exec_options()  # Celery caches the 3 s limit here
    configure(app, QueueConfig(**fields))
    [cid] = seed_candidates(bench.engine, [variant(8)])
    submit_evaluations([cid])
    prefix = bench.env["QMIND_QUEUE_PREFIX"]
    client = redis_lib.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    [raw] = client.lrange(f"{prefix}{prefix}cpu", 0, -1)
    assert json.loads(raw)["headers"]["timelimit"] == [None, None]


# ---- messages the broker lost -------------------------------------------------------------------------------------
def _queue_key(bench, kind: str = "cpu") -> str:
    prefix = bench.env["QMIND_QUEUE_PREFIX"]
    return prefix + prefix + kind  # kombu's global key prefix, then the queue's own (prefixed) name


def _take_like_a_consumer_that_died(bench, kind: str = "cpu") -> bytes:
    """What kombu's BRPOP does: the message leaves the Redis list. A consumer SIGKILLed before its next
    command (recording the delivery as unacknowledged) leaves it nowhere."""
    raw = redis_client().rpop(_queue_key(bench, kind))
    assert raw is not None, "the queue was empty"
    return raw


def test_an_evaluation_whose_message_the_broker_lost_is_found_through_the_store_and_done_once(bench):
    from db import leases
    from workers.app import EVALUATE_TASK
    from workers.reconcile import _decode, broker_messages
    from workers.submit import resubmit_lost_evaluations, submit_evaluations, wait_for_evaluations

    prefix = bench.env["QMIND_QUEUE_PREFIX"]
    client = redis_client()
    codes = [variant(i) for i in range(5)]
    ids = seed_candidates(bench.engine, codes)
    with configured_app({**bench.env, "QMIND_RECONCILE_EVERY_S": "1"}):
        tickets = submit_evaluations(ids)
        held = broker_messages(prefix + "cpu")
        assert sorted(args[0] for _, args in held) == sorted(ids)
        assert resubmit_lost_evaluations(tickets, confirm_s=0.1) == [], "nothing was lost: nothing resubmitted"

        lost = _decode(_take_like_a_consumer_that_died(bench))[1][0]
        # a second delivery that did get recorded as unacknowledged (kombu's own format) is in flight in a live
        # worker, which holds a lease on it (its heartbeat): not lost
        in_flight = _take_like_a_consumer_that_died(bench)
        in_flight_id = _decode(in_flight)[1][0]
        client.hset(prefix + "unacked", "tag-in-flight",
                    json.dumps([json.loads(in_flight), prefix + "cpu", prefix + "cpu"]))
        with session_scope(bench.engine) as s:
            leases.hold(s, "cpu-alive@test:1", {(EVALUATE_TASK, str(in_flight_id))}, ttl_s=120)
        assert resubmit_lost_evaluations(tickets, confirm_s=0.1) == [lost]
        assert client.llen(_queue_key(bench)) == 4, "three left plus the resubmitted one"
        assert resubmit_lost_evaluations(tickets, confirm_s=0.1) == [], "resubmitted once, not again"

        with session_scope(bench.engine) as s:  # that worker dies: no more lease, its delivery stays in unacked
            leases.release_all(s, "cpu-alive@test:1")
        assert resubmit_lost_evaluations(tickets, confirm_s=0.1) == [in_flight_id], \
            "a dead worker's delivery does not wait for the visibility timeout"
        client.hdel(prefix + "unacked", "tag-in-flight")  # (it would come back then, and find the verdict)
        lost_again = _decode(_take_like_a_consumer_that_died(bench))[1][0]
        # the waiting submitter finds this one by itself (every QMIND_RECONCILE_EVERY_S) while a worker runs
        bench.worker(concurrency=1).wait_ready()
        statuses = wait_for_evaluations(tickets, timeout_s=240)
    assert statuses == {i: "valid" for i in ids}
    assert count_evaluations(bench.engine) == len(codes), "one evaluation per candidate, the lost ones included"
    for code in codes:
        assert evaluation_of(bench.engine, code)[1] == 1, "no evaluation ran twice"
    assert lost_again in ids


def test_a_generation_whose_message_the_broker_lost_is_handed_back_for_resubmission(bench):
    from workers.submit import WaitTimeoutError, submit_generation, wait_for_batches

    with session_scope(bench.engine) as s:
        goal_id, run_id = add_goal(s, "tfim-4"), new_run(s)
    prompts = [{"prompt_index": i, "memory_context": "", "seed": i} for i in range(2)]
    with configured_app({**bench.env, "QMIND_RECONCILE_EVERY_S": "0.5"}):
        submit_generation(run_id=run_id, goal_id=goal_id, iteration=0, prompts=prompts,
                          generator={"generator": "transformers"})  # a model: the gpu queue
        handed: list[list[int]] = []
        wait = {"run_id": run_id, "goal_id": goal_id, "iteration": 0, "prompt_indices": [0, 1], "timeout_s": 3,
                "resubmit": handed.append}
        with pytest.raises(WaitTimeoutError):  # no GPU worker: the message waits in the queue, and is not lost
            wait_for_batches(**wait)
        assert handed == []
        _take_like_a_consumer_that_died(bench, "gpu")
        with pytest.raises(WaitTimeoutError):
            wait_for_batches(**wait)
        assert handed and handed[0] == [0, 1]



def test_waiting_rides_out_a_broker_outage_while_it_looks_for_lost_messages(bench, caplog):
    from workers.submit import WaitTimeoutError, submit_evaluations, wait_for_evaluations

    ids = seed_candidates(bench.engine, [variant(i) for i in range(2)])
    tickets = submit_evaluations(ids)
    down = {**bench.env, "QMIND_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0", "QMIND_RECONCILE_EVERY_S": "0.5",
            "QMIND_BROKER_CONNECT_TIMEOUT_S": "0.5"}
    with configured_app(down), pytest.raises(WaitTimeoutError, match="2 of 2 evaluations unfinished"):
        wait_for_evaluations(tickets, timeout_s=4)  # the store answers; the broker scan fails and is retried
    assert "looking for lost messages failed" in caplog.text
