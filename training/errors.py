"""One error family for training: exports, trainers, checkpoints and model evaluation.

Third-party failures (datasets, transformers, peft, TRL) are wrapped once with ``raise TrainingError(...) from
exc``. Every message says what was wrong and what was expected.
"""


class TrainingError(Exception):
    """Something in training/ could not be done; the message says why and what was expected."""


class EmptyExportError(TrainingError):
    """An export matched no rows; the message says which filter removed them."""
