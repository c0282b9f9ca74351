"""The evaluation core: goals, sandbox, verification, barren-plateau check, VQE scoring and rewards.

Pure functions; no Celery, no SQL. It imports nothing of the project but its own modules.
"""

from .errors import EvaluationError, GoalError, SandboxError
from .goals import Goal, get_goal

__all__ = ["EvaluationError", "GoalError", "SandboxError", "Goal", "get_goal"]
