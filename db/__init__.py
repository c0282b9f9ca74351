"""The SQL store: SQLAlchemy models, sessions, Alembic migrations and the queries researchers run."""
