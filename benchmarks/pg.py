"""A throwaway PostgreSQL database for one benchmark run: created on the server ``pg_url`` names, dropped after."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import make_url


def fresh_pg(pg_url: str, *, prefix: str = "qmind_bench") -> tuple[str, Callable[[], None]]:
    """(URL of a new empty database ``<prefix>_<random>``, a function that drops it)."""
    import psycopg

    base = make_url(pg_url)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = {"host": base.host or "127.0.0.1", "port": base.port or 5432, "user": base.username or "postgres",
             "password": base.password, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.set(database=name).render_as_string(hide_password=False), drop
