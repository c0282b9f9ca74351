"""The declarative base: one MetaData with a naming convention, so constraint names are stable across
SQLite and PostgreSQL and Alembic can compare and drop them by name."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from sqlalchemy import JSON, DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Timezone-aware now (UTC); the store keeps every timestamp in UTC."""
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict] = {
        dict: JSON,
        list: JSON,
        dt.datetime: DateTime(timezone=True),
    }
