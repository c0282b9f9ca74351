"""Migrations: upgrade from empty on SQLite and PostgreSQL, no drift between models and migrations, clear
refusals for a schema that is behind or ahead, and migrations that ship inside the package."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest
from sqlalchemy import inspect, text
from storehelpers import create_pg_database, drop_pg_database

from db.errors import SchemaError
from db.migrate import current_revision, ensure_schema, head_revision, schema_diff, upgrade_database
from db.session import make_engine

ROOT = pathlib.Path(__file__).resolve().parents[1]
TABLES = {"goals", "model_versions", "runs", "generation_batches", "candidates", "evaluations"}
VIEWS = {"candidate_outcomes", "best_candidates", "pass_rates", "pass_rates_by_model", "bp_free_rate_by_iteration",
         "repeated_circuits"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        name, url = create_pg_database("qmind_mig")
        yield url
        drop_pg_database(name)


def test_an_empty_database_upgrades_to_head_with_every_table_and_view(empty_url):
    engine = make_engine(empty_url)
    assert current_revision(engine) is None
    assert upgrade_database(engine) == head_revision()
    insp = inspect(engine)
    assert TABLES <= set(insp.get_table_names())
    assert VIEWS <= set(insp.get_view_names())
    with engine.connect() as conn:
        for view in VIEWS:  # every view compiles and runs on an empty store
            conn.execute(text(f"SELECT * FROM {view}")).fetchall()
    engine.dispose()


def test_the_models_and_the_migrations_do_not_drift(empty_url):
    engine = make_engine(empty_url)
    upgrade_database(engine)
    assert schema_diff(engine) == []
    engine.dispose()


def test_a_downgrade_to_base_and_an_upgrade_again_leave_the_same_schema(empty_url):
    from alembic import command

    from db.migrate import alembic_config

    engine = make_engine(empty_url)
    upgrade_database(engine)
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
    assert not (TABLES | VIEWS) & set(inspect(engine).get_table_names() + inspect(engine).get_view_names())
    upgrade_database(engine)
    assert schema_diff(engine) == []
    engine.dispose()


def test_ensure_schema_refuses_an_empty_database_and_names_the_command(empty_url):
    engine = make_engine(empty_url)
    with pytest.raises(SchemaError, match=r"revision none \(empty database\), this code needs .*qmind db upgrade"):
        ensure_schema(engine, upgrade=False)
    assert ensure_schema(engine, upgrade=True) == head_revision()
    assert ensure_schema(engine, upgrade=False) == head_revision()
    engine.dispose()


def test_ensure_schema_refuses_a_schema_that_is_behind_or_ahead(empty_url):
    engine = make_engine(empty_url)
    upgrade_database(engine, "0001")
    with pytest.raises(SchemaError, match=f"at revision 0001, this code needs {head_revision()}: run `qmind db"):
        ensure_schema(engine, upgrade=False)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(SchemaError, match="revision f00d, which this code does not know.*upgrade quantum-mind"):
        ensure_schema(engine, upgrade=True)
    engine.dispose()


def qmind(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], cwd=ROOT, check=False, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_qmind_db_upgrade_current_and_check_speak_json(empty_url):
    env = {"QMIND_DATABASE_URL": empty_url}
    before = qmind("db", "check", "--json", env=env)
    assert before.returncode == 1 and "qmind db upgrade" in json.loads(before.stdout)["problems"][0]
    up = json.loads(qmind("db", "upgrade", "--json", env=env).stdout)
    assert (up["from"], up["to"], up["upgraded"]) == (None, head_revision(), True)
    now = json.loads(qmind("db", "current", "--json", env=env).stdout)
    assert now["current"] == now["head"] == head_revision() and now["up_to_date"]
    ok = qmind("db", "check", "--json", env=env)
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"database": up["database"], "ok": True, "problems": []}


def test_a_password_in_the_database_url_never_reaches_the_output(tmp_path):
    result = qmind("db", "current", "--json", "--url", "postgresql://qmind:s3cret@127.0.0.1:1/nowhere")
    assert result.returncode == 1 and "s3cret" not in result.stdout + result.stderr
    assert "127.0.0.1:1" in json.loads(result.stdout)["error"]


def test_an_unsupported_database_url_is_refused_with_what_is_expected():
    result = qmind("db", "upgrade", "--url", "mysql://u@h/db")
    assert result.returncode == 2 and "sqlite:///path.db" in result.stderr and "PostgreSQL" in result.stderr


@pytest.mark.slow
def test_the_built_wheel_ships_the_migrations_and_upgrades_from_another_directory(tmp_path):
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheel_dir), str(ROOT)], check=False, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(wheel_dir.glob("quantum_mind-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(site)
    for needed in ("db/migrations/env.py", "db/migrations/script.py.mako",
                   "db/migrations/versions/0001_initial_tables.py", "db/migrations/versions/0002_research_views.py"):
        assert needed in names
    db_file = tmp_path / "elsewhere" / "q.db"
    db_file.parent.mkdir()
    result = subprocess.run([sys.executable, "-c", "from scheduler.cli import main; main()", "db", "upgrade",
                             "--json"], cwd=db_file.parent, check=False, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(site), "QMIND_DATABASE_URL": f"sqlite:///{db_file}"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["to"] == head_revision()
