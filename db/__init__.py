"""The SQL store: SQLAlchemy models, sessions, Alembic migrations and the queries researchers run.

``db`` imports nothing else of quantum-mind; results arrive as plain dicts.
"""

from .errors import ReadOnlyQueryError, SchemaError, StoreError
from .migrate import ensure_schema, upgrade_database
from .session import make_engine, redact, session_scope
from .writes import EvaluationKey, code_sha256, record_evaluation

__all__ = [
           "EvaluationKey",
           "ReadOnlyQueryError",
           "SchemaError",
           "StoreError",
           "code_sha256",
           "ensure_schema",
           "make_engine",
           "record_evaluation",
           "redact",
           "session_scope",
           "upgrade_database",
]
