"""Errors of the store. Every message says what was wrong and what to do about it."""


class StoreError(Exception):
    """The store could not do what was asked; the message says why and what was expected."""


class SchemaError(StoreError):
    """The database schema is not the one this code needs (behind, ahead or missing)."""


class ReadOnlyQueryError(StoreError, ValueError):
    """A query given to the read-only SQL runner is not a single SELECT statement."""
