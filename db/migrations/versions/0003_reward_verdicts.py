"""Evaluations record the barren-plateau verdict (including 'not measurable') and the seed's literal reward.

Scorer 2026.12.1 (issue 11): the seed reward is normalised per goal; the literal formula is kept beside it. Older
rows keep NULL in both columns (their scorer_version says which rules scored them).

Revision ID: 0003_reward
Revises: 0002
Create Date: 2026-12-03 07:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_reward"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE (not batch mode): SQLite >= 3.35 adds and drops columns in place, and a batch-mode copy of
# the table would break the research views (0002) that read it.
def upgrade() -> None:
    op.add_column("evaluations", sa.Column("bp_verdict", sa.String(length=24), nullable=True))
    op.add_column("evaluations", sa.Column("seed_reward_literal", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("evaluations", "seed_reward_literal")
    op.drop_column("evaluations", "bp_verdict")
