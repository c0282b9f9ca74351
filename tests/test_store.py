"""The store on SQLite and PostgreSQL: idempotent writes on natural keys, attempt counting, the research views,
the best-candidates query and the read-only SQL runner."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from storehelpers import add_batch, add_goal, new_run, verdict

from db import writes
from db.errors import ReadOnlyQueryError, StoreError
from db.models import Candidate, Evaluation, GenerationBatch, Goal, ModelVersion
from db.queries import best_evaluations, check_select, run_read_only
from db.session import make_engine, session_scope
from workers import records

CODE_A = "def create_ansatz(n):\n    return 'a'\n"
CODE_B = "def create_ansatz(n):\n    return 'b'\n"
CODE_C = "def create_ansatz(n):\n    return 'c'\n"


def count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def key(goal_id: int, code: str = CODE_A, version: str = "v1") -> writes.EvaluationKey:
    return writes.EvaluationKey(writes.code_sha256(code), goal_id, version)


def test_a_goal_is_stored_once_per_spec_hash(store):
    with session_scope(store) as s:
        first, again, other = add_goal(s, "tfim-4"), add_goal(s, "tfim-4"), add_goal(s, "heisenberg-4")
    with session_scope(store) as s:
        assert first == again != other
        assert count(s, Goal) == 2
        row = s.get(Goal, first)
        assert row.name == "tfim-4" and row.num_qubits == 4 and row.spec["pauli_terms"]
        assert row.exact_energy == pytest.approx(-5.226251859505502, abs=1e-9)


def test_a_model_version_is_keyed_on_base_model_and_adapter_hash(store):
    with session_scope(store) as s:
        a = writes.upsert_model_version(s, name="qwen", base_model="Qwen/Qwen2.5-Coder-7B-Instruct")
        b = writes.upsert_model_version(s, name="qwen+sft1", base_model="Qwen/Qwen2.5-Coder-7B-Instruct",
                                        adapter_sha256="ab" * 32, adapter_path="/m/sft1", metrics={"pass": 0.3})
        b_again = writes.upsert_model_version(s, name="renamed", base_model="Qwen/Qwen2.5-Coder-7B-Instruct",
                                              adapter_sha256="ab" * 32, metrics={"bp_free": 0.9})
    with session_scope(store) as s:
        assert a != b == b_again and count(s, ModelVersion) == 2
        assert s.get(ModelVersion, b).metrics == {"pass": 0.3, "bp_free": 0.9}
        assert s.get(ModelVersion, b).name == "qwen+sft1"


def test_a_redelivered_batch_writes_nothing_new(store):
    with session_scope(store) as s:
        goal_id, run_id = add_goal(s), new_run(s)
        first = add_batch(s, run_id=run_id, goal_id=goal_id, codes=[CODE_A, None, CODE_B])
    with session_scope(store) as s:
        again = add_batch(s, run_id=run_id, goal_id=goal_id, codes=[CODE_C, CODE_C, CODE_C])
    assert first.created and not again.created
    assert again.batch_id == first.batch_id and again.candidate_ids == first.candidate_ids
    with session_scope(store) as s:
        assert count(s, GenerationBatch) == 1 and count(s, Candidate) == 3
        cands = s.execute(select(Candidate).order_by(Candidate.candidate_index)).scalars().all()
        assert [c.code for c in cands] == [CODE_A, None, CODE_B]
        assert cands[0].code_sha256 == writes.code_sha256(CODE_A) and cands[1].code_sha256 is None
        assert cands[1].extraction_error == "no python block"
        assert [c.temperature for c in cands] == [0.5, 0.7, 0.9]


def test_a_failed_batch_keeps_its_error_and_has_no_candidates(store):
    with session_scope(store) as s:
        goal_id, run_id = add_goal(s), new_run(s)
        rec = writes.record_batch(s, run_id=run_id, goal_id=goal_id, iteration=2, prompt_index=1,
                                  batch={"generator": "vllm", "candidates": [{"temperature": 0.5, "raw": "x"}]},
                                  error="CUDA out of memory")
    with session_scope(store) as s:
        row = s.get(GenerationBatch, rec.batch_id)
        assert (row.status, row.error, rec.candidate_ids) == ("failed", "CUDA out of memory", ())


def test_the_first_final_verdict_wins_and_a_second_write_changes_nothing(store):
    with session_scope(store) as s:
        goal_id = add_goal(s)
        first = writes.record_evaluation(s, key(goal_id), records.columns(verdict("valid", error=0.02)))
    with session_scope(store) as s:
        second = writes.record_evaluation(s, key(goal_id), records.columns(verdict("error", error=None)))
    with session_scope(store) as s:
        assert first == second and count(s, Evaluation) == 1
        row = s.get(Evaluation, first)
        assert row.status == "valid" and row.vqe_error == pytest.approx(0.02) and row.errors == []


def test_the_same_code_is_evaluated_once_per_goal_and_scorer_version(store):
    with session_scope(store) as s:
        g1, g2 = add_goal(s, "tfim-4"), add_goal(s, "xy-4")
        for k in (key(g1), key(g2), key(g1, version="v2"), key(g1)):
            writes.record_evaluation(s, k, records.columns(verdict()))
    with session_scope(store) as s:
        assert count(s, Evaluation) == 3


def test_an_attempt_is_counted_before_the_work_and_a_final_verdict_is_not_repeated(store):
    with session_scope(store) as s:
        goal_id = add_goal(s)
        first = writes.begin_attempt(s, key(goal_id), max_attempts=3, worker_host="cpu@a")
    with session_scope(store) as s:
        assert (first.proceed, first.attempts, first.status) == (True, 1, "pending")
        row = s.get(Evaluation, first.evaluation_id)
        assert (row.status, row.attempts, row.worker_host) == ("pending", 1, "cpu@a")
        writes.record_evaluation(s, key(goal_id), records.columns(verdict()))
    with session_scope(store) as s:
        later = writes.begin_attempt(s, key(goal_id), max_attempts=3, worker_host="cpu@b")
        assert (later.proceed, later.status, later.attempts) == (False, "valid", 1)
        assert s.get(Evaluation, first.evaluation_id).worker_host == "cpu@a"


def test_a_candidate_whose_attempts_all_die_is_marked_failed_after_max_attempts(store):
    with session_scope(store) as s:
        goal_id = add_goal(s)
    decisions = []
    for _ in range(5):  # each attempt "dies": nothing is recorded after begin_attempt
        with session_scope(store) as s:
            decisions.append(writes.begin_attempt(s, key(goal_id), max_attempts=3))
    assert [d.proceed for d in decisions] == [True, True, True, False, False]
    assert [d.status for d in decisions] == ["pending"] * 3 + ["failed", "failed"]
    with session_scope(store) as s:
        row = s.get(Evaluation, decisions[0].evaluation_id)
        assert row.status == "failed" and row.attempts == 4 and row.stage == "queue"
        assert "gave up after 3 attempts" in row.errors[0] and row.finished_at is not None
        # a late verdict from a straggler does not overwrite the decision
        writes.record_evaluation(s, key(goal_id), records.columns(verdict()))
    with session_scope(store) as s:
        assert s.get(Evaluation, decisions[0].evaluation_id).status == "failed"


def test_retries_after_transient_errors_do_not_count_as_deaths(store):
    with session_scope(store) as s:
        goal_id = add_goal(s)
    for retries in range(5):  # the queue retried five times after database errors
        with session_scope(store) as s:
            attempt = writes.begin_attempt(s, key(goal_id), max_attempts=1, retries=retries)
        assert attempt.proceed, f"retry {retries} was refused"


def test_a_verdict_with_an_unknown_status_is_refused_with_a_message(store):
    with session_scope(store) as s:
        goal_id = add_goal(s)
        with pytest.raises(StoreError, match="status must be one of"):
            writes.record_evaluation(s, key(goal_id), {"status": "great"})
        with pytest.raises(StoreError, match="list of messages"):
            writes.record_evaluation(s, key(goal_id), {"status": "error", "errors": "boom"})


def test_an_evaluation_result_round_trips_into_columns(store):
    from workers.evaluation import results as R

    result = R.EvaluationResult(
        status="valid", stage="done", goal="tfim-4", seed=11, timings={"vqe": 1.25}, fingerprint="n:" + "f" * 64,
        verification=R.VerificationResult(ok=True, num_qubits=4, depth=7, num_parameters=12,
                                          gate_counts={"ry": 12, "cx": 4}, num_two_qubit_gates=4),
        bp=R.BarrenPlateauResult(has_barren_plateau=False, method="scaling", sizes=(4, 6, 8),
                                 variances=(0.2, 0.1, 0.05), decay_rate=0.35, decay_rate_stderr=0.02, samples=200),
        vqe=R.VQEResult(energy=-5.2, exact_energy=-5.226, error=0.026, relative_error=0.005,
                        chemical_accuracy=None, below_exact=False, evaluations=300, gradient_evaluations=90,
                        seconds=2.5, restarts=4, seeds=(11, 12, 13, 14), success_fraction=0.5, optimizer="L-BFGS-B",
                        best_parameters=(0.1, 0.2)),
        reward=R.RewardResult(version="r2", seed_reward=0.74, shaped_reward=0.81, components={"energy": 0.5}),
        sandbox=R.SandboxResult(status="ok", isolation="bwrap", wall_seconds=0.4))
    payload = result.to_dict()
    payload["vqe"]["best_parameters"] = list(result.vqe.best_parameters)
    with session_scope(store) as s:
        goal_id = add_goal(s)
        ev_id = writes.record_evaluation(s, key(goal_id, version=result.scorer_version), records.columns(payload),
                                         worker_host="cpu@h")
    with session_scope(store) as s:
        row = s.get(Evaluation, ev_id)
        assert (row.status, row.stage, row.seed, row.depth, row.num_parameters) == ("valid", "done", 11, 7, 12)
        assert row.gate_counts == {"ry": 12, "cx": 4} and row.num_two_qubit_gates == 4
        assert row.has_barren_plateau is False and row.bp_method == "scaling" and row.bp_sizes == [4, 6, 8]
        assert row.bp_decay_rate == pytest.approx(0.35) and row.bp_decay_rate_stderr == pytest.approx(0.02)
        assert row.vqe_energy == pytest.approx(-5.2) and row.vqe_error == pytest.approx(0.026)
        assert row.vqe_seeds == [11, 12, 13, 14] and row.vqe_success_fraction == 0.5 and row.vqe_restarts == 4
        assert row.vqe_best_parameters == [0.1, 0.2] and row.vqe_optimizer == "L-BFGS-B"
        assert (row.reward_version, row.seed_reward, row.shaped_reward) == ("r2", 0.74, 0.81)
        assert row.reward_components == {"energy": 0.5} and row.timings == {"vqe": 1.25}
        assert row.circuit_fingerprint == "n:" + "f" * 64 and row.sandbox_isolation == "bwrap"
        assert row.worker_host == "cpu@h" and row.finished_at is not None


def test_concurrent_writers_on_sqlite_wait_for_the_lock_instead_of_failing(tmp_path):
    from db.migrate import upgrade_database

    engine = make_engine(f"sqlite:///{tmp_path / 'busy.db'}")
    upgrade_database(engine)
    with session_scope(engine) as s:
        goal_id = add_goal(s)
    failures: list[BaseException] = []

    def writer(worker: int) -> None:
        own = make_engine(f"sqlite:///{tmp_path / 'busy.db'}")
        try:
            for i in range(40):
                with session_scope(own) as s:
                    k = key(goal_id, code=f"# {worker}-{i}")
                    writes.begin_attempt(s, k, max_attempts=3)
                with session_scope(own) as s:
                    writes.record_evaluation(s, k, records.columns(verdict()))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    with session_scope(engine) as s:
        assert count(s, Evaluation) == 160
        assert s.execute(select(func.count()).where(Evaluation.status == "valid")).scalar_one() == 160
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


# ---- views and queries -------------------------------------------------------------------------------------------
def _research_data(engine):
    """Two runs on tfim-4, two model versions; CODE_A found in both runs; one candidate without code."""
    with session_scope(engine) as s:
        goal_id = add_goal(s, "tfim-4")
        base = writes.upsert_model_version(s, name="base", base_model="qwen")
        tuned = writes.upsert_model_version(s, name="sft1", base_model="qwen", adapter_sha256="cd" * 32)
        run1, run2 = new_run(s, model_version_id=base), new_run(s, model_version_id=tuned)
        add_batch(s, run_id=run1, goal_id=goal_id, codes=[CODE_A, CODE_B, None], model_version_id=base)
        add_batch(s, run_id=run2, goal_id=goal_id, codes=[CODE_A, CODE_C, CODE_B], model_version_id=tuned,
                  iteration=1)
        writes.record_evaluation(s, key(goal_id, CODE_A), records.columns(verdict("valid", error=0.05, bp=False,
                                                                          fingerprint="n:" + "1" * 64)))
        writes.record_evaluation(s, key(goal_id, CODE_B), records.columns(verdict("invalid", error=None, bp=None)))
        writes.record_evaluation(s, key(goal_id, CODE_C), records.columns(verdict("valid", error=0.001, bp=True)))
    return goal_id


def _view(engine, sql):
    result = run_read_only(make_engine(engine.url, read_only=True), sql)
    return [dict(zip(result.columns, r)) for r in result.rows]


def test_best_candidates_view_ranks_valid_evaluations_by_error(store):
    _research_data(store)
    rows = _view(store, "SELECT rank, code_sha256, vqe_error FROM best_candidates "
                        "WHERE goal_name = 'tfim-4' ORDER BY rank")
    assert [(r["rank"], r["code_sha256"]) for r in rows] == [(1, writes.code_sha256(CODE_C)),
                                                             (2, writes.code_sha256(CODE_A))]


def test_pass_rates_count_candidates_without_code_as_judged_failures(store):
    _research_data(store)
    by_model = {r["model_version"]: r for r in _view(store, "SELECT * FROM pass_rates_by_model")}
    assert (by_model["base"]["candidates"], by_model["base"]["judged"], by_model["base"]["valid"]) == (3, 3, 1)
    assert by_model["base"]["pass_rate"] == pytest.approx(1 / 3)
    assert by_model["sft1"]["pass_rate"] == pytest.approx(2 / 3)
    per_t = {(r["model_version"], r["temperature"]): r["pass_rate"] for r in _view(store, "SELECT * FROM pass_rates")}
    assert per_t == {("base", 0.5): 1.0, ("base", 0.7): 0.0, ("base", 0.9): 0.0,
                     ("sft1", 0.5): 1.0, ("sft1", 0.7): 1.0, ("sft1", 0.9): 0.0}


def test_bp_free_rate_is_measured_per_run_and_iteration(store):
    _research_data(store)
    rows = {(r["run_id"], r["iteration"]): r for r in _view(store, "SELECT * FROM bp_free_rate_by_iteration")}
    assert (rows[(1, 0)]["bp_measured"], rows[(1, 0)]["bp_free"], rows[(1, 0)]["bp_free_rate"]) == (1, 1, 1.0)
    assert (rows[(2, 1)]["bp_measured"], rows[(2, 1)]["bp_free"]) == (2, 1)
    assert rows[(2, 1)]["bp_free_rate"] == pytest.approx(0.5)


def test_repeated_circuits_lists_the_same_circuit_found_in_several_runs(store):
    _research_data(store)
    rows = _view(store, "SELECT * FROM repeated_circuits ORDER BY circuit_key")
    keys = {r["circuit_key"]: r for r in rows}
    # CODE_A has a fingerprint, CODE_B is matched by its code hash; CODE_C appears in one run only
    assert set(keys) == {"n:" + "1" * 64, writes.code_sha256(CODE_B)}
    assert keys["n:" + "1" * 64]["runs"] == 2 and keys["n:" + "1" * 64]["best_error"] == pytest.approx(0.05)


def test_best_evaluations_names_the_first_candidate_that_produced_the_code(store):
    _research_data(store)
    with session_scope(store) as s:
        rows = best_evaluations(s, "tfim-4", top=5)
        assert [r["code"] for r in rows] == [CODE_C, CODE_A]
        assert rows[1]["times_generated"] == 2 and rows[1]["run_id"] == 1 and rows[1]["model_version"] == "base"
        assert rows[0]["temperature"] == 0.7 and rows[0]["rank"] == 1
        assert len(best_evaluations(s, "tfim-4", top=1)) == 1
        with pytest.raises(StoreError, match="no goal named 'tfim-99'.*tfim-4"):
            best_evaluations(s, "tfim-99")


# ---- read-only SQL -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", ["DELETE FROM goals", "drop table goals", "UPDATE goals SET name = 'x'",
                                 "SELECT 1; DROP TABLE goals", "  ", "PRAGMA query_only = OFF",
                                 "ATTACH DATABASE 'x.db' AS x"])
def test_anything_but_one_select_is_refused_before_it_reaches_the_database(sql):
    with pytest.raises(ReadOnlyQueryError):
        check_select(sql)


@pytest.mark.parametrize("sql", ["SELECT 1", "select ';' as semi;", "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
                                 "-- comment\nSELECT 1 /* ; */", "SELECT 'it''s' AS q ; "])
def test_a_single_select_is_accepted(sql):
    assert check_select(sql)


def test_a_write_hidden_in_a_with_clause_is_stopped_by_the_database(store):
    _research_data(store)
    read_only = make_engine(store.url, read_only=True)
    with pytest.raises(DBAPIError, match="(?i)read-only|readonly"):
        run_read_only(read_only, "WITH x AS (SELECT 1) DELETE FROM goals")
    with session_scope(store) as s:
        assert count(s, Goal) == 1


def test_run_read_only_returns_columns_rows_and_truncation(store):
    _research_data(store)
    result = run_read_only(make_engine(store.url, read_only=True),
                           "SELECT id, temperature FROM candidates ORDER BY id", max_rows=4)
    assert result.columns == ["id", "temperature"] and len(result.rows) == 4 and result.truncated
    assert result.rows[0] == [1, 0.5]


def test_a_bulk_ingest_stores_the_same_rows_as_single_writes_and_keeps_earlier_verdicts(store):
    """On PostgreSQL BULK_THRESHOLD rows or more go through one JSON document; the result must not differ."""
    n = writes.BULK_THRESHOLD + 36
    codes = [f"# bulk {i}" for i in range(n)]
    with session_scope(store) as s:
        goal_id = add_goal(s)
        writes.record_evaluation(s, key(goal_id, codes[0], "bulk"), records.columns(verdict("error", error=None)))  # final
        writes.begin_attempt(s, key(goal_id, codes[1], "bulk"), max_attempts=3, worker_host="cpu@x")  # pending
    items = [(key(goal_id, c, "bulk"), records.columns(verdict(error=0.001 * (i + 1), fingerprint=f"n:{i:064x}")))
             for i, c in enumerate(codes)]
    with session_scope(store) as s:
        assert writes.record_evaluations(s, items + items[:5]) == n
        writes.record_evaluation(s, key(goal_id, "# single", "single"), items[7][1])
    with session_scope(store) as s:
        assert count(s, Evaluation) == n + 1
        rows = {r.code_sha256: r for r in s.execute(select(Evaluation)).scalars()}
        first, second = rows[writes.code_sha256(codes[0])], rows[writes.code_sha256(codes[1])]
        assert first.status == "error" and first.vqe_error is None  # the earlier final verdict won
        assert second.status == "valid" and second.attempts == 1 and second.worker_host == "cpu@x"
        bulk, single = rows[writes.code_sha256(codes[7])], rows[writes.code_sha256("# single")]
        skip = {"id", "code_sha256", "scorer_version", "created_at", "updated_at", "finished_at"}
        columns = [c.name for c in Evaluation.__table__.columns if c.name not in skip]
        assert {c: getattr(bulk, c) for c in columns} == {c: getattr(single, c) for c in columns}
        assert bulk.bp_sizes == [4, 6, 8] and bulk.gate_counts == {"ry": 8, "cx": 3}


def test_non_finite_numbers_are_stored_as_null_on_both_paths(store):
    bad = verdict(error=0.5)
    bad["vqe"]["energy"] = float("nan")
    bad["bp"]["variances"] = [0.1, float("inf")]
    with session_scope(store) as s:
        goal_id = add_goal(s)
        writes.record_evaluation(s, key(goal_id, "# one"), records.columns(bad))
        writes.record_evaluations(s, [(key(goal_id, f"# many {i}"), records.columns(bad))
                                      for i in range(writes.BULK_THRESHOLD)])
    with session_scope(store) as s:
        rows = s.execute(select(Evaluation)).scalars().all()
        assert len(rows) == writes.BULK_THRESHOLD + 1
        assert all(r.vqe_energy is None and r.bp_variances == [0.1, None] and r.vqe_error == 0.5 for r in rows)


def test_a_url_object_keeps_its_password_and_messages_hide_it():
    from sqlalchemy import make_url

    from db.session import normalise_url, redact

    url = normalise_url(make_url("postgresql://qmind:s3cret@db:5432/q"))
    assert url.password == "s3cret" and url.drivername == "postgresql+psycopg"
    assert "s3cret" not in redact(url) and "s3cret" not in redact("postgresql://qmind:s3cret@db/q")
    with pytest.raises(StoreError) as err:
        normalise_url("not a url with s3cret")
    assert "s3cret" not in str(err.value) and "sqlite:///path.db" in str(err.value)
