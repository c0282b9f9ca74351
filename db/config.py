"""Configuration of the store (environment variables with the ``QMIND_`` prefix)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///qmind.db"


class StoreConfig(BaseSettings):
    """Where the store lives and how connections behave."""

    model_config = SettingsConfigDict(env_prefix="QMIND_", extra="ignore")

    database_url: str = Field(DEFAULT_DATABASE_URL, description=(
        "SQLAlchemy URL of the store: sqlite:///path.db (embedded default) or "
        "postgresql+psycopg://user:password@host:5432/dbname"))
    sqlite_busy_timeout_s: float = Field(30.0, gt=0, description=(
        "SQLite: how long a writer waits for the file lock before failing"))
    db_connect_timeout_s: int = Field(10, ge=1, description=(
        "PostgreSQL: seconds to wait for a connection before failing"))
    db_pool_size: int = Field(5, ge=1, description="PostgreSQL: connections kept open per process")
    sql_timeout_s: float = Field(30.0, gt=0, description=(
        "PostgreSQL: longest a read-only `qmind sql` / `qmind history` query may run"))
    db_echo: bool = Field(False, description="Log every SQL statement (debugging)")
