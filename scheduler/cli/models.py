"""``qmind models list``: the registered adapters (training/registry.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from . import app
from .common import console, print_json
from .export import training_errors

models_app = typer.Typer(help="The model registry: adapters registered by training.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_cmd(
    url: Annotated[str | None, typer.Option(help="Store (default: QMIND_DATABASE_URL, else sqlite:///qmind.db).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Registered adapters, oldest first: version, method, parent, training-data hash, loss, reward, eval rates.
    `--adapter latest` (or a version name) resolves to the last row (or that row)."""
    from db.migrate import ensure_schema
    from db.session import make_engine
    from training.registry import listing

    with training_errors(url, as_json=as_json):
        engine = make_engine(url)
        ensure_schema(engine, upgrade=False)
        rows = listing(engine)
    if as_json:
        print_json({"models": rows})
        return
    table = Table(title=f"{len(rows)} registered adapter(s)")
    for column in ("name", "method", "parent", "data sha256", "final loss", "reward", "syntax / verified / BP-free"):
        table.add_column(column, overflow="fold")
    for r in rows:
        rates = r["eval_rates"] or {}
        shown = " / ".join("-" if rates.get(k) is None else f"{rates[k]:.0%}"
                           for k in ("syntax_valid", "verification_pass", "bp_free")) if rates else "-"
        table.add_row(r["name"], r["method"] or "-", r["parent"] or "-", (r["data_sha256"] or "-")[:12],
                      _num(r["final_loss"]), _num(r["final_reward_mean"]), shown)
    console.print(table)


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def adapter_option(adapter: str | None, url: str | None, *, as_json: bool) -> str | None:
    """An ``--adapter`` value with ``latest`` / ``quantum-mind-vN`` resolved through the store's registry."""
    from training.registry import is_registry_name, resolve_adapter

    if not adapter or not is_registry_name(adapter):
        return adapter
    from db.session import make_engine

    with training_errors(url, as_json=as_json):
        return resolve_adapter(make_engine(url), adapter)
