"""Hardware-stage columns of evaluations: routed two-qubit gates and depth on a fake IBM device, and the noisy
energy with its standard error and shot budget (``workers/evaluation/hardware.py``); NULL when the goal did not ask
for the stage. Goal-set columns: the mean member error and the error at the held-out lattice size
(``workers/evaluation/transfer.py``); NULL for single goals.

Revision ID: 0004_transfer
Revises: 0003_reward
Create Date: 2026-12-03 06:50:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_transfer"
down_revision: str | Sequence[str] | None = "0003_reward"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [
    ("hw_backend", sa.String(length=32)),
    ("hw_two_qubit_gates", sa.Integer()),
    ("hw_depth", sa.Integer()),
    ("hw_noisy_energy", sa.Float()),
    ("hw_noisy_stderr", sa.Float()),
    ("hw_noisy_error", sa.Float()),
    ("hw_shots", sa.Integer()),
    ("hw_details", sa.JSON()),
    ("set_mean_error", sa.Float()),
    ("set_extrapolation_qubits", sa.Integer()),
    ("set_extrapolation_error", sa.Float()),
    ("set_details", sa.JSON()),
]


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild): the research views over evaluations stay valid on SQLite
    for name, type_ in COLUMNS:
        op.add_column("evaluations", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("evaluations", name)
