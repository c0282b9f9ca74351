"""Alembic environment of the store. The URL comes from quantum-mind's configuration (``QMIND_DATABASE_URL``,
passed in by ``db.migrate``), never from an alembic.ini; a caller may also hand over an open connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from db import models  # noqa: F401  (registers the tables on Base.metadata)
from db.base import Base
from db.session import make_engine

# Serialises concurrent upgrades (several workers or loops starting at once) on PostgreSQL.
_PG_LOCK_KEY = 0x716D696E64  # "qmind"


def _configure_and_run(connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=is_sqlite,
                      compare_type=True)
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _configure_and_run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("quantum-mind migrations run online only: use `qmind db upgrade`")
run_migrations_online()
