"""One error family for generation: bad model/adapter/configuration, backend failures (wrapped once)."""


class GenerationError(Exception):
    """Generation could not run; the message says what was wrong and what was expected."""
