"""Alembic migrations shipped inside the package: upgrade, inspect, refuse to run on the wrong schema.

``ensure_schema(engine, upgrade=...)`` is what the discovery loop and the workers call before touching the
store: it upgrades an empty or older database when asked to, and otherwise refuses with a message naming the
revisions and the command to run.
"""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from .base import Base
from .errors import SchemaError
from .session import redact


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic configuration that points at ``db/migrations`` inside the installed package."""
    cfg = Config()
    cfg.set_main_option("script_location", "db:migrations")
    if engine is not None:
        # '%' must be doubled for ConfigParser interpolation
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest revision this code ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "db/migrations has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for a database without the store's schema)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_database(engine: Engine, revision: str = "head") -> str:
    """Upgrade the database to ``revision``; returns the revision reached."""
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
    return current_revision(engine) or ""


def schema_diff(engine: Engine) -> list:
    """Differences between the models and the database (empty when the migrations match the models)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def ensure_schema(engine: Engine, *, upgrade: bool) -> str:
    """Make sure the database is at this code's revision: upgrade it (``upgrade=True``) or refuse."""
    want = head_revision()
    have = current_revision(engine)
    if have == want:
        return have
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if have is not None and have not in known:
        raise SchemaError(
            f"database {redact(engine.url)} is at schema revision {have}, which this code does not know "
            f"(it needs {want}); the database was upgraded by a newer quantum-mind: upgrade quantum-mind here")
    if upgrade:
        upgrade_database(engine)
        return want
    raise SchemaError(
        f"database {redact(engine.url)} schema is at revision {have or 'none (empty database)'}, this code needs "
        f"{want}: run `qmind db upgrade` (with the same QMIND_DATABASE_URL)")
