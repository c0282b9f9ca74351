"""``qmind db upgrade|current|check``, ``qmind history`` and the read-only ``qmind sql``."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, NoReturn

import typer
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from db.errors import StoreError
from db.migrate import current_revision, ensure_schema, head_revision, schema_diff, upgrade_database
from db.queries import best_evaluations, run_read_only
from db.session import make_engine, redact, session_scope

from . import app
from .common import console, err_console, print_json, usage_error

db_app = typer.Typer(help="The SQL store: migrations and checks.", no_args_is_help=True)
app.add_typer(db_app, name="db")

URL_HELP = "Database URL (default: QMIND_DATABASE_URL, else sqlite:///qmind.db)."


def _fail(message: str, *, as_json: bool, code: int = 1) -> NoReturn:
    if as_json:
        print_json({"error": message})
    else:
        err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=code)


@contextlib.contextmanager
def _store_errors(url: str | None, *, as_json: bool) -> Iterator[None]:
    """Turn store failures into one clear line: usage errors exit 2, database failures exit 1."""
    try:
        yield
    except StoreError as exc:
        usage_error(str(exc), as_json=as_json)
    except DBAPIError as exc:
        where = redact(url) if url else "the database"
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        _fail(f"{where}: {detail}", as_json=as_json)


def _engine(url: str | None, *, read_only: bool = False):
    return make_engine(url, read_only=read_only)


@db_app.command("upgrade")
def db_upgrade(url: str = typer.Option(None, "--url", help=URL_HELP),
               as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Create or upgrade the store's schema to this code's revision."""
    with _store_errors(url, as_json=as_json):
        engine = _engine(url)
        before = current_revision(engine)
        after = upgrade_database(engine)
        shown = redact(engine.url)
    if as_json:
        print_json({"database": shown, "from": before, "to": after, "upgraded": before != after})
    else:
        console.print(f"{shown}: schema {before or 'empty'} -> {after}" if before != after
                      else f"{shown}: schema already at {after}")


@db_app.command("current")
def db_current(url: str = typer.Option(None, "--url", help=URL_HELP),
               as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Show the database's schema revision and this code's."""
    with _store_errors(url, as_json=as_json):
        engine = _engine(url)
        have, want = current_revision(engine), head_revision()
        shown = redact(engine.url)
    if as_json:
        print_json({"database": shown, "current": have, "head": want, "up_to_date": have == want})
    else:
        console.print(f"{shown}: at {have or 'none (empty)'}, code needs {want}"
                      + (" (up to date)" if have == want else " -> run `qmind db upgrade`"))


@db_app.command("check")
def db_check(url: str = typer.Option(None, "--url", help=URL_HELP),
             as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Exit 0 when the schema is current and matches the models; 1 otherwise (with the reason)."""
    with _store_errors(url, as_json=as_json):
        engine = _engine(url)
        problems: list[str] = []
        try:
            ensure_schema(engine, upgrade=False)
        except StoreError as exc:
            problems.append(str(exc))
        else:
            problems += [f"model and database differ: {d!r}" for d in schema_diff(engine)]
        shown = redact(engine.url)
    if as_json:
        print_json({"database": shown, "ok": not problems, "problems": problems})
    elif not problems:
        console.print(f"{shown}: schema at {head_revision()}, matches the models")
    else:
        for p in problems:
            err_console.print(f"[bold red]problem:[/] {p}", highlight=False)
    if problems:
        raise typer.Exit(code=1)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)


@app.command("history")
def history(goal: str = typer.Option(..., "--goal", help="Goal name as stored (e.g. tfim-6)."),
            top: int = typer.Option(10, "--top", min=1, help="How many candidates to show."),
            code: bool = typer.Option(False, "--code", help="Also print each candidate's code."),
            url: str = typer.Option(None, "--url", help=URL_HELP),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """The best valid candidates found for a goal, lowest energy error first."""
    with _store_errors(url, as_json=as_json):
        engine = _engine(url, read_only=True)
        with session_scope(engine) as session:
            rows = best_evaluations(session, goal, top=top)
    if as_json:
        print_json({"goal": goal, "top": top, "candidates": rows})
        return
    if not rows:
        console.print(f"no valid candidates for goal '{goal}' yet")
        return
    table = Table(title=f"best candidates for {goal}")
    cols = [("rank", "#"), ("vqe_error", "error"), ("vqe_energy", "energy"), ("exact_energy", "exact"),
            ("depth", "depth"), ("num_parameters", "params"), ("num_two_qubit_gates", "2q"),
            ("has_barren_plateau", "BP"), ("shaped_reward", "reward"), ("temperature", "T"),
            ("model_version", "model"), ("run_id", "run"), ("times_generated", "seen"), ("code_sha256", "code")]
    if any(r.get("hw_two_qubit_gates") is not None for r in rows):  # goals scored with the hardware stage
        cols[7:7] = [("hw_two_qubit_gates", "routed 2q"), ("hw_noisy_error", "noisy error")]
    if any(r.get("set_mean_error") is not None for r in rows):  # goal sets: vqe_error is the worst member's
        cols[1:2] = [("vqe_error", "worst error"), ("set_mean_error", "mean error"),
                     ("set_extrapolation_error", "extrap. error"), ("set_extrapolation_qubits", "extrap. n")]
    for _, title in cols:
        table.add_column(title)
    for r in rows:
        table.add_row(*[_fmt(r[k])[:12] if k == "code_sha256" else _fmt(r[k]) for k, _ in cols])
    console.print(table)
    if code:
        for r in rows:
            console.rule(f"#{r['rank']} {r['code_sha256'][:12]}")
            console.print(r["code"] or "", highlight=False, markup=False)


@app.command("sql")
def sql(query: str = typer.Argument(..., help="One SELECT statement, e.g. \"SELECT * FROM best_candidates\"."),
        max_rows: int = typer.Option(10_000, "--max-rows", min=1, help="Stop after this many rows."),
        url: str = typer.Option(None, "--url", help=URL_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object {columns, rows}.")) -> None:
    """Run one read-only SELECT against the store (views: best_candidates, pass_rates, ...)."""
    with _store_errors(url, as_json=as_json):
        engine = _engine(url, read_only=True)
        result = run_read_only(engine, query, max_rows=max_rows)
    if as_json:
        print_json({"columns": result.columns, "rows": result.rows, "truncated": result.truncated})
        return
    table = Table(caption=f"{len(result.rows)} row(s)" + (" (truncated)" if result.truncated else ""))
    for c in result.columns:
        table.add_column(c, overflow="fold")
    for r in result.rows:
        table.add_row(*[_fmt(v) for v in r])
    console.print(table)
