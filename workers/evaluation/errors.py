"""One error family for the evaluation core.

Third-party failures (Qiskit, Aer, SciPy) are wrapped once with ``raise EvaluationError(...) from exc`` so callers
catch a single family. Every message says what was wrong and what was expected.
"""


class EvaluationError(Exception):
    """Something in the evaluation core failed; the message says what and what was expected."""


class GoalError(EvaluationError, ValueError):
    """A goal name, goal file or goal field is invalid."""


class SandboxError(EvaluationError):
    """The sandbox itself could not run (not the candidate's fault): missing interpreter, bad configuration."""
