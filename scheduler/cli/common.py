"""Helpers shared by CLI commands: JSON output, usage errors, the rich console and its two-column tables."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=False)
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Exactly one JSON object on stdout (scripts rely on it)."""
    sys.stdout.write(json.dumps(obj, indent=None, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def field_table(title: str) -> Table:
    """A table without a header: a bold name column and a value column that folds long values."""
    table = Table(show_header=False, title=title)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    return table


def usage_error(message: str, *, as_json: bool = False) -> NoReturn:
    """A user mistake: say what was wrong and exit 2."""
    if as_json:
        print_json({"error": message})
    else:
        err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


HARDWARE_HELP = ("Also score on a fake IBM device: two-qubit gates and depth after routing, and a noisy energy "
                 "(qiskit-ibm-runtime; docs/scoring.md).")
HARDWARE_SHOTS_HELP = "Shot budget of the --hardware noisy energy (split over the measurement groups)."


def with_hardware(goal, *, enabled: bool, shots: int):
    """``goal`` with the hardware stage turned on when ``enabled`` (a GoalError names a bad shot budget)."""
    if not enabled:
        return goal
    import dataclasses

    from workers.evaluation.goals.hardware_options import hardware_options

    options = hardware_options({**(goal.hardware.to_dict() if goal.hardware else {}), "shots": shots},
                               where="--hardware-shots")
    return dataclasses.replace(goal, hardware=options)
