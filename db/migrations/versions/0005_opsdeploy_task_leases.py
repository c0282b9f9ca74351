"""task_leases: the task messages each live worker holds (reserved or running), renewed by the worker's
heartbeat, so the work of a dead worker is found within a lease time instead of a broker visibility timeout.

Revision ID: 0005_opsdeploy
Revises: 0004_transfer
Create Date: 2026-12-03 07:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_opsdeploy"
down_revision: str | Sequence[str] | None = "0004_transfer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_leases",
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("worker", sa.String(length=256), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task", "subject", name=op.f("pk_task_leases")),
    )
    op.create_index(op.f("ix_task_leases_expires_at"), "task_leases", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_task_leases_expires_at"), table_name="task_leases")
    op.drop_table("task_leases")
