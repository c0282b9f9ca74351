"""Shared fixtures (the store's live in storehelpers.py)."""

from storehelpers import pg_database, store  # noqa: F401
