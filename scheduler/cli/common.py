"""Helpers shared by CLI commands: JSON output, usage errors, the rich console."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console(stderr=False)
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Exactly one JSON object on stdout (scripts rely on it)."""
    sys.stdout.write(json.dumps(obj, indent=None, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def usage_error(message: str, *, as_json: bool = False) -> NoReturn:
    """A user mistake: say what was wrong and exit 2."""
    if as_json:
        print_json({"error": message})
    else:
        err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)
