"""Research views (portable SQL for SQLite and PostgreSQL): candidate_outcomes, best_candidates, pass_rates,
pass_rates_by_model, bp_free_rate_by_iteration, repeated_circuits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 16:40:00

"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies: a later change to a view is a new migration, never an edit here.
VIEWS = {
    # Every candidate with the verdict on its code for its goal (the most recent evaluation of that code/goal);
    # status is 'no-code' when nothing could be extracted and 'unevaluated' when no evaluation exists yet.
    "candidate_outcomes": """
SELECT c.id AS candidate_id, c.batch_id, b.run_id, b.goal_id, g.name AS goal_name, b.iteration, b.prompt_index,
       c.candidate_index, b.model_version_id, mv.name AS model_version, c.temperature, c.code_sha256,
       e.id AS evaluation_id,
       CASE WHEN c.code IS NULL THEN 'no-code' WHEN e.id IS NULL THEN 'unevaluated' ELSE e.status END AS status,
       e.vqe_error, e.vqe_relative_error, e.has_barren_plateau, e.depth, e.num_two_qubit_gates,
       e.seed_reward, e.shaped_reward, e.scorer_version, e.circuit_fingerprint, c.created_at
FROM candidates c
JOIN generation_batches b ON b.id = c.batch_id
JOIN goals g ON g.id = b.goal_id
LEFT JOIN model_versions mv ON mv.id = b.model_version_id
LEFT JOIN evaluations e ON e.id = (SELECT MAX(e2.id) FROM evaluations e2
                                   WHERE e2.code_sha256 = c.code_sha256 AND e2.goal_id = b.goal_id)
""",
    # Valid evaluations ranked per goal name by energy error (rank 1 = best).
    "best_candidates": """
SELECT g.name AS goal_name, e.goal_id,
       ROW_NUMBER() OVER (PARTITION BY g.name ORDER BY e.vqe_error, e.id) AS rank,
       e.id AS evaluation_id, e.code_sha256, e.vqe_error, e.vqe_relative_error, e.vqe_energy, e.exact_energy,
       e.depth, e.num_parameters, e.num_two_qubit_gates, e.has_barren_plateau, e.seed_reward, e.shaped_reward,
       e.scorer_version, e.circuit_fingerprint, e.finished_at
FROM evaluations e
JOIN goals g ON g.id = e.goal_id
WHERE e.status = 'valid'
""",
    # Pass rate per model version and temperature: valid / judged (judged = a final verdict, 'no-code' included).
    "pass_rates": """
SELECT model_version_id, model_version, temperature,
       COUNT(*) AS candidates,
       SUM(CASE WHEN status IN ('pending', 'unevaluated') THEN 0 ELSE 1 END) AS judged,
       SUM(CASE WHEN status = 'valid' THEN 1 ELSE 0 END) AS valid,
       CAST(SUM(CASE WHEN status = 'valid' THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / NULLIF(SUM(CASE WHEN status IN ('pending', 'unevaluated') THEN 0 ELSE 1 END), 0) AS pass_rate
FROM candidate_outcomes
GROUP BY model_version_id, model_version, temperature
""",
    "pass_rates_by_model": """
SELECT model_version_id, model_version,
       COUNT(*) AS candidates,
       SUM(CASE WHEN status IN ('pending', 'unevaluated') THEN 0 ELSE 1 END) AS judged,
       SUM(CASE WHEN status = 'valid' THEN 1 ELSE 0 END) AS valid,
       CAST(SUM(CASE WHEN status = 'valid' THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / NULLIF(SUM(CASE WHEN status IN ('pending', 'unevaluated') THEN 0 ELSE 1 END), 0) AS pass_rate
FROM candidate_outcomes
GROUP BY model_version_id, model_version
""",
    # Per run, goal and iteration: of the candidates whose barren-plateau risk was measured, how many were free.
    "bp_free_rate_by_iteration": """
SELECT run_id, goal_name, iteration,
       COUNT(*) AS candidates,
       SUM(CASE WHEN has_barren_plateau IS NULL THEN 0 ELSE 1 END) AS bp_measured,
       SUM(CASE WHEN NOT has_barren_plateau THEN 1 ELSE 0 END) AS bp_free,
       CAST(SUM(CASE WHEN NOT has_barren_plateau THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / NULLIF(SUM(CASE WHEN has_barren_plateau IS NULL THEN 0 ELSE 1 END), 0) AS bp_free_rate
FROM candidate_outcomes
GROUP BY run_id, goal_name, iteration
""",
    # The same circuit (by circuit fingerprint when known, else by code hash) found in more than one run.
    "repeated_circuits": """
SELECT goal_name, COALESCE(circuit_fingerprint, code_sha256) AS circuit_key,
       COUNT(DISTINCT run_id) AS runs, COUNT(*) AS candidates, COUNT(DISTINCT code_sha256) AS distinct_codes,
       MIN(run_id) AS first_run, MAX(run_id) AS last_run, MIN(vqe_error) AS best_error
FROM candidate_outcomes
WHERE code_sha256 IS NOT NULL
GROUP BY goal_name, COALESCE(circuit_fingerprint, code_sha256)
HAVING COUNT(DISTINCT run_id) > 1
""",
}


def upgrade() -> None:
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body.strip()}")


def downgrade() -> None:
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS {name}")
