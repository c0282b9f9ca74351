"""The ``qmind`` command line (Typer). Each sub-command lives in its own module and registers itself here.

Every command that prints results accepts ``--json`` and then prints exactly one JSON object on stdout.
Exit codes: 0 for a judged result (even a failing candidate), 2 for usage errors (bad goal, file, option).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="qmind",
    help="quantum-mind: discover trainable variational quantum circuits with a language model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from . import (  # noqa: F401  (each module adds its commands to ``app``)
        cluster,
        db,
        discover,
        eval_model,
        evaluate,
        export,
        generate,
        goals,
        loop,
        models,
        train,
        train_base,
        worker,
    )


_register()


def main() -> None:
    app()
