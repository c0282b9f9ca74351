"""The SQL store: SQLAlchemy models, sessions, Alembic migrations and the queries researchers run.

``db`` imports nothing else of quantum-mind; results arrive as plain dicts.
"""

from .errors import ReadOnlyQueryError, SchemaError, StoreError
from .migrate import ensure_schema, upgrade_database
from .session import make_engine, redact, session_scope
from .writes import EvaluationKey, code_sha256, record_evaluation

__all__ = ["ReadOnlyQueryError", "SchemaError", "StoreError", "ensure_schema", "upgrade_database", "make_engine",
           "redact", "session_scope", "EvaluationKey", "code_sha256", "record_evaluation"]
