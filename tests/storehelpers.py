"""Fixtures and helpers for store and queue tests: a fresh PostgreSQL database per test session (random name,
dropped at the end), SQLite files in tmp_path, and small builders for goals, batches and verdicts.

Import the fixtures you need into a test module (``from storehelpers import store, pg_database``).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from db import writes
from db.migrate import upgrade_database
from db.session import make_engine, session_scope

PG_HOST = os.environ.get("QMIND_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("QMIND_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("QMIND_TEST_PG_USER", "postgres")
TABLES = ("evaluations", "candidates", "generation_batches", "runs", "model_versions", "goals")


def pg_admin() -> psycopg.Connection:
    try:
        return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True,
                               connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed on {PG_HOST}:{PG_PORT} as user {PG_USER} (run `make services`): {exc}")


def create_pg_database(prefix: str = "qmind_test") -> tuple[str, str]:
    """A new empty database; returns (name, SQLAlchemy URL)."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_pg_database(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session, upgraded to head, dropped at the end."""
    name, url = create_pg_database()
    engine = make_engine(url)
    upgrade_database(engine)
    engine.dispose()
    yield url
    drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[Engine]:
    """An engine on an upgraded, empty store: a fresh SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        upgrade_database(engine)
    else:
        engine = make_engine(request.getfixturevalue("pg_database"))
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    yield engine
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- builders ----------------------------------------------------------------------------------------------------
def add_goal(session, name: str = "tfim-4") -> int:
    from workers.evaluation.goals import get_goal

    goal = get_goal(name)
    return writes.upsert_goal(session, goal.to_spec(), spec_hash=goal.spec_hash, exact_energy=goal.exact_energy)


def candidate(code: str | None, temperature: float = 0.5, **extra: Any) -> dict[str, Any]:
    return {"temperature": temperature, "raw": f"```python\n{code}\n```" if code else "no code here", "code": code,
            "tokens": 42, "extraction_error": None if code else "no python block", "seed": 7, **extra}


def add_batch(session, *, run_id: int, goal_id: int, codes: list[str | None], iteration: int = 0,
              prompt_index: int = 0, model_version_id: int | None = None,
              temperatures=(0.5, 0.7, 0.9)) -> writes.BatchRecord:
    batch = {"goal_name": "g", "system_prompt": "sys", "prompt": "write an ansatz", "memory_context": "ctx",
             "generator": "procedural", "settings": {"temperatures": list(temperatures)}, "prompt_tokens": 100,
             "completion_tokens": 300, "seconds": 0.5,
             "candidates": [candidate(c, temperatures[i % len(temperatures)]) for i, c in enumerate(codes)]}
    return writes.record_batch(session, run_id=run_id, goal_id=goal_id, iteration=iteration,
                               prompt_index=prompt_index, batch=batch, model_version_id=model_version_id)


def verdict(status: str = "valid", *, error: float | None = 0.01, bp: bool | None = False, depth: int = 4,
            fingerprint: str | None = None) -> dict[str, Any]:
    """A payload shaped like ``EvaluationResult.to_dict()``."""
    payload: dict[str, Any] = {"status": status, "errors": [] if status == "valid" else [f"it was {status}"],
                               "stage": "done" if status == "valid" else "verify", "seed": 3,
                               "timings": {"sandbox": 0.2}, "fingerprint": fingerprint,
                               "verification": {"ok": status == "valid", "depth": depth, "num_parameters": 8,
                                                "gate_counts": {"ry": 8, "cx": 3}, "num_two_qubit_gates": 3}}
    if bp is not None:
        payload["bp"] = {"has_barren_plateau": bp, "method": "scaling", "sizes": [4, 6, 8],
                         "variances": [0.1, 0.05, 0.02], "decay_rate": 0.4, "decay_rate_stderr": 0.05}
    if error is not None:
        payload["vqe"] = {"energy": -4.0 + error, "exact_energy": -4.0, "error": error,
                          "relative_error": error / 4.0, "chemical_accuracy": None, "below_exact": False,
                          "evaluations": 120, "gradient_evaluations": 40, "seconds": 1.5, "restarts": 4,
                          "seeds": [0, 1, 2, 3], "success_fraction": 0.75, "optimizer": "L-BFGS-B"}
        payload["reward"] = {"version": "r1", "seed_reward": max(0.0, 1 - 10 * error), "shaped_reward": 0.8,
                             "components": {"validity": 0.2}}
    return payload


def new_run(session, goal_names=("tfim-4",), model_version_id: int | None = None) -> int:
    return writes.create_run(session, goal_names=list(goal_names), generator="procedural",
                             model_version_id=model_version_id, settings={"iterations": 3}, seed=1)


__all__ = ["pg_database", "session_scope", "store"]


def sql_examples(path=None) -> dict[str, str]:
    """The ```sql blocks of docs/store.md (or ``path``) by name (the first line of each is ``-- name: description``)."""
    import pathlib
    import re

    path = path or pathlib.Path(__file__).resolve().parents[1] / "docs" / "store.md"
    blocks = re.findall(r"```sql\n(.*?)```", pathlib.Path(path).read_text(), flags=re.DOTALL)
    out = {}
    for block in blocks:
        first = block.splitlines()[0]
        match = re.match(r"--\s*([a-z0-9-]+):", first)
        assert match, f"docs/store.md: an SQL example must start with '-- name: description', got {first!r}"
        out[match[1]] = block.strip()
    return out


@contextlib.contextmanager
def eager_sqlite_store(path: pathlib.Path, monkeypatch, *, fast_scoring: bool = True) -> Iterator[Engine]:
    """The embedded default: a migrated SQLite store at ``path``, no broker, the Celery app configured for it (and
    put back to the defaults afterwards). ``fast_scoring``: 16 barren-plateau samples and one VQE restart."""
    from workers.app import app, configure
    from workers.config import QueueConfig

    url = f"sqlite:///{path}"
    monkeypatch.delenv("QMIND_BROKER_URL", raising=False)
    if fast_scoring:
        monkeypatch.setenv("QMIND_BP_SAMPLES", "16")
        monkeypatch.setenv("QMIND_VQE_RESTARTS", "1")
    engine = make_engine(url)
    upgrade_database(engine)
    configure(app, QueueConfig(database_url=url))
    try:
        yield engine
    finally:
        configure(app, QueueConfig(broker_url="", database_url="sqlite:///qmind.db"))
        engine.dispose()
