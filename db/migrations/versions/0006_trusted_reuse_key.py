"""Exact score-reuse key of evaluations: the scorer version and the structural fingerprints of the circuits at every
scored size (``workers/evaluation/fingerprint.reuse_key``), so reused barren-plateau and VQE scores are never
copied on a one-point numerical match or without looking at the extra-size circuits. NULL on older rows (never
reused from).

Revision ID: 0006_trusted
Revises: 0005_opsdeploy
Create Date: 2026-12-03 08:05:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_trusted"
down_revision: str | Sequence[str] | None = "0005_opsdeploy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild): the research views over evaluations stay valid on SQLite
    op.add_column("evaluations", sa.Column("reuse_key", sa.String(length=80), nullable=True))
    op.create_index("ix_evaluations_reuse_key", "evaluations", ["reuse_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_evaluations_reuse_key", table_name="evaluations")
    op.drop_column("evaluations", "reuse_key")
