"""One database engine per worker process (created lazily, never shared across a fork)."""

from __future__ import annotations

import os

from sqlalchemy import Engine

from db.session import make_engine

from .config import QueueConfig

_engines: dict[tuple[str, int], Engine] = {}


def get_engine(config: QueueConfig) -> Engine:
    key = (config.database_url, os.getpid())
    engine = _engines.get(key)
    if engine is None:
        engine = _engines[key] = make_engine(config.database_url)
    return engine


def forget_engines() -> None:
    """Drop engines inherited from a parent process without closing the parent's connections."""
    for (url, pid), engine in list(_engines.items()):
        if pid != os.getpid():
            engine.dispose(close=False)
            del _engines[(url, pid)]
