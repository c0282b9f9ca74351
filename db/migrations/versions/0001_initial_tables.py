"""Initial tables: goals, model_versions, runs, generation_batches, candidates, evaluations.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 16:21:07.753340

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('goals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('num_qubits', sa.Integer(), nullable=False),
    sa.Column('exact_energy', sa.Float(), nullable=False),
    sa.Column('max_depth', sa.Integer(), nullable=False),
    sa.Column('allowed_gates', sa.JSON(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('provenance', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_goals')),
    sa.UniqueConstraint('spec_hash', name=op.f('uq_goals_spec_hash'))
    )
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goals_name'), ['name'], unique=False)

    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('base_model', sa.String(length=256), nullable=False),
    sa.Column('adapter_sha256', sa.String(length=64), nullable=False),
    sa.Column('adapter_path', sa.String(length=1024), nullable=True),
    sa.Column('training_config', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('base_model', 'adapter_sha256', name=op.f('uq_model_versions_base_model_adapter_sha256'))
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_name'), ['name'], unique=False)

    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_sha256', sa.String(length=64), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=False),
    sa.Column('scorer_version', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=True),
    sa.Column('num_parameters', sa.Integer(), nullable=True),
    sa.Column('gate_counts', sa.JSON(), nullable=True),
    sa.Column('num_two_qubit_gates', sa.Integer(), nullable=True),
    sa.Column('has_barren_plateau', sa.Boolean(), nullable=True),
    sa.Column('bp_method', sa.String(length=16), nullable=True),
    sa.Column('bp_sizes', sa.JSON(), nullable=True),
    sa.Column('bp_variances', sa.JSON(), nullable=True),
    sa.Column('bp_decay_rate', sa.Float(), nullable=True),
    sa.Column('bp_decay_rate_stderr', sa.Float(), nullable=True),
    sa.Column('bp_two_design_variance', sa.Float(), nullable=True),
    sa.Column('bp_reason', sa.Text(), nullable=True),
    sa.Column('vqe_energy', sa.Float(), nullable=True),
    sa.Column('exact_energy', sa.Float(), nullable=True),
    sa.Column('vqe_error', sa.Float(), nullable=True),
    sa.Column('vqe_relative_error', sa.Float(), nullable=True),
    sa.Column('chemical_accuracy', sa.Boolean(), nullable=True),
    sa.Column('below_exact', sa.Boolean(), nullable=True),
    sa.Column('vqe_evaluations', sa.Integer(), nullable=True),
    sa.Column('vqe_gradient_evaluations', sa.Integer(), nullable=True),
    sa.Column('vqe_seconds', sa.Float(), nullable=True),
    sa.Column('vqe_restarts', sa.Integer(), nullable=True),
    sa.Column('vqe_seeds', sa.JSON(), nullable=True),
    sa.Column('vqe_success_fraction', sa.Float(), nullable=True),
    sa.Column('vqe_optimizer', sa.String(length=32), nullable=True),
    sa.Column('vqe_best_parameters', sa.JSON(), nullable=True),
    sa.Column('reward_version', sa.String(length=32), nullable=True),
    sa.Column('seed_reward', sa.Float(), nullable=True),
    sa.Column('shaped_reward', sa.Float(), nullable=True),
    sa.Column('reward_components', sa.JSON(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('timings', sa.JSON(), nullable=False),
    sa.Column('sandbox_isolation', sa.String(length=16), nullable=True),
    sa.Column('worker_host', sa.String(length=256), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('circuit_fingerprint', sa.String(length=80), nullable=True),
    sa.Column('reused_from', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], name=op.f('fk_evaluations_goal_id_goals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations')),
    sa.UniqueConstraint('code_sha256', 'goal_id', 'scorer_version', name=op.f('uq_evaluations_code_sha256_goal_id_scorer_version'))
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluations_circuit_fingerprint'), ['circuit_fingerprint'], unique=False)
        batch_op.create_index('ix_evaluations_goal_id_status_vqe_error', ['goal_id', 'status', 'vqe_error'], unique=False)
        batch_op.create_index('ix_evaluations_pending', ['updated_at'], unique=False,
                              postgresql_where=sa.text("status = 'pending'"),
                              sqlite_where=sa.text("status = 'pending'"))

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('goal_names', sa.JSON(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('generator', sa.String(length=32), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('iteration', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('host', sa.String(length=256), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_runs_model_version_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_model_version_id'), ['model_version_id'], unique=False)

    op.create_table('generation_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=False),
    sa.Column('iteration', sa.Integer(), nullable=False),
    sa.Column('prompt_index', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('generator', sa.String(length=32), nullable=False),
    sa.Column('system_prompt', sa.Text(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('memory_context', sa.Text(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('worker_host', sa.String(length=256), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['goal_id'], ['goals.id'], name=op.f('fk_generation_batches_goal_id_goals')),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_generation_batches_model_version_id_model_versions')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_generation_batches_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generation_batches')),
    sa.UniqueConstraint('run_id', 'goal_id', 'iteration', 'prompt_index', name=op.f('uq_generation_batches_run_id_goal_id_iteration_prompt_index'))
    )
    with op.batch_alter_table('generation_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_generation_batches_goal_id'), ['goal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_batches_model_version_id'), ['model_version_id'], unique=False)

    op.create_table('candidates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('candidate_index', sa.Integer(), nullable=False),
    sa.Column('temperature', sa.Float(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('code_sha256', sa.String(length=64), nullable=True),
    sa.Column('extraction_error', sa.Text(), nullable=True),
    sa.Column('tokens', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['generation_batches.id'], name=op.f('fk_candidates_batch_id_generation_batches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_candidates')),
    sa.UniqueConstraint('batch_id', 'candidate_index', name=op.f('uq_candidates_batch_id_candidate_index'))
    )
    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_candidates_code_sha256'), ['code_sha256'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_candidates_code_sha256'))

    op.drop_table('candidates')
    with op.batch_alter_table('generation_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generation_batches_model_version_id'))
        batch_op.drop_index(batch_op.f('ix_generation_batches_goal_id'))

    op.drop_table('generation_batches')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_model_version_id'))

    op.drop_table('runs')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index('ix_evaluations_pending')
        batch_op.drop_index('ix_evaluations_goal_id_status_vqe_error')
        batch_op.drop_index(batch_op.f('ix_evaluations_circuit_fingerprint'))

    op.drop_table('evaluations')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_name'))

    op.drop_table('model_versions')
    with op.batch_alter_table('goals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goals_name'))

    op.drop_table('goals')
