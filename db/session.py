"""Engines and sessions: an SQLite file (WAL, busy timeout, foreign keys) or PostgreSQL through psycopg 3."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import pathlib
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from .config import StoreConfig
from .errors import StoreError


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, recursively: JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def json_dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON for the store; non-finite numbers become null (cleaned only when present: the fast path
    is one C-encoder call)."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False, **kwargs)


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL; ``postgresql://`` and ``postgres://`` mean psycopg 3. Unknown schemes are refused."""
    if isinstance(url, URL):
        parsed = url  # (str() of a URL hides its password: never round-trip through it)
    else:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError, TypeError):  # the text may hold a password: do not echo it
            raise StoreError("cannot read the database URL (QMIND_DATABASE_URL or --url); expected "
                             "sqlite:///path.db or postgresql+psycopg://user:password@host:5432/dbname") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise StoreError(f"unsupported database '{backend}' in {redact(parsed)}; quantum-mind stores into SQLite "
                     f"(sqlite:///path.db) or PostgreSQL (postgresql+psycopg://...)")


def redact(url: str | URL) -> str:
    """The URL with its password hidden, fit for messages and logs."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return "<unreadable database URL>"


def store_label(url: str | URL) -> str:
    """A short, file-name-safe name of one store, e.g. ``sqlite-qmind-3f2a1c`` or ``postgresql-test-9b04de``:
    backend and database name, then a hash of where it lives (an SQLite file's absolute path; a server's host,
    port and database), so two stores never share a label and one store always gets the same."""
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file:")
        where = database if in_memory else str(pathlib.Path(database).resolve())
        name = "memory" if in_memory else pathlib.Path(database).stem
    else:
        where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
        name = parsed.database or "db"
    digest = hashlib.sha256(f"{backend}://{where}".encode()).hexdigest()[:6]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{backend}-{name}").strip("-.")
    return f"{slug}-{digest}"


def _sqlite_read_only_url(url: URL) -> URL:
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        raise StoreError(f"a read-only connection needs an SQLite file, got {redact(url)}")
    file = pathlib.Path(path).resolve()
    if not file.exists():
        raise StoreError(f"SQLite database {file} does not exist; create it with `qmind db upgrade`")
    return url.set(database=f"file:{file}", query={"mode": "ro", "uri": "true"})


def make_engine(url: str | URL | None = None, *, config: StoreConfig | None = None,
                read_only: bool = False) -> Engine:
    """An engine for ``url`` (default: ``QMIND_DATABASE_URL``, else ``sqlite:///qmind.db``).

    ``read_only`` opens SQLite with ``mode=ro`` and ``PRAGMA query_only``, and PostgreSQL with read-only
    transactions and a statement timeout.
    """
    config = config or StoreConfig()
    parsed = normalise_url(url if url is not None else config.database_url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, config, read_only)
    connect_args: dict = {"connect_timeout": config.db_connect_timeout_s}
    if read_only:
        ms = int(config.sql_timeout_s * 1000)
        connect_args["options"] = f"-c default_transaction_read_only=on -c statement_timeout={ms}"
    return create_engine(parsed, echo=config.db_echo, pool_pre_ping=True, pool_size=config.db_pool_size,
                         connect_args=connect_args, json_serializer=json_dumps)


def _sqlite_engine(url: URL, config: StoreConfig, read_only: bool) -> Engine:
    if read_only:
        url = _sqlite_read_only_url(url)
    elif url.database and url.database != ":memory:":
        parent = pathlib.Path(url.database).resolve().parent
        if not parent.is_dir():
            raise StoreError(f"cannot create SQLite database {url.database}: folder {parent} does not exist")
    engine = create_engine(url, echo=config.db_echo, json_serializer=json_dumps,
                           connect_args={"timeout": config.sqlite_busy_timeout_s})
    busy_ms = int(config.sqlite_busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cur.execute("PRAGMA foreign_keys = ON")
        if read_only:
            cur.execute("PRAGMA query_only = ON")
        else:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
