"""``qmind export sft|grpo|rewards``: training datasets out of the store (JSONL or Parquet, with
FILE.meta.json).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import pathlib
from collections.abc import Iterator
from typing import NoReturn

import typer

from . import app
from .common import console, err_console, field_table, print_json, usage_error

export_app = typer.Typer(
    help="Training datasets out of the store (TRL formats, with a FILE.meta.json record).",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")

URL_HELP = "Database URL (default: QMIND_DATABASE_URL, else sqlite:///qmind.db)."
OUT_HELP = "Output file (.jsonl or .parquet); FILE.meta.json is written beside it."


def _fail(message: str, *, as_json: bool) -> NoReturn:
    if as_json:
        print_json({"error": message})
    else:
        err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=1)


@contextlib.contextmanager
def training_errors(url: str | None, *, as_json: bool) -> Iterator[None]:
    """Bad inputs exit 2 with what was wrong; a database that fails exits 1."""
    from sqlalchemy.exc import DBAPIError

    from db.errors import StoreError
    from db.session import redact
    from training.errors import TrainingError
    from workers.evaluation.errors import GoalError

    try:
        yield
    except (TrainingError, StoreError, GoalError) as exc:
        usage_error(str(exc), as_json=as_json)
    except DBAPIError as exc:
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        _fail(f"{redact(url) if url else 'the database'}: {detail}", as_json=as_json)


def split_list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _filters(
    goals: str | None, runs: str | None, model_versions: str | None, scorer_version: str, as_json: bool
):
    from training.store_rows import StoreFilters
    from workers.evaluation.results import SCORER_VERSION

    try:
        run_ids = tuple(int(r) for r in split_list(runs))
    except ValueError:
        usage_error(f"--runs must be comma-separated run ids such as 1,2, got {runs!r}", as_json=as_json)
    version = None if scorer_version == "all" else (scorer_version or SCORER_VERSION)
    return StoreFilters(
        goals=split_list(goals),
        runs=run_ids,
        model_versions=split_list(model_versions),
        scorer_version=version,
    )


def _engine(url: str | None):
    from db.migrate import ensure_schema
    from db.session import make_engine

    engine = make_engine(url, read_only=False)
    ensure_schema(engine, upgrade=False)
    return engine


def _report(result, as_json: bool) -> None:
    from training.dataset_files import meta_path

    meta = result.meta
    out = {
        "kind": meta["kind"],
        "file": result.path,
        "meta_file": str(meta_path(result.path)),
        "format": meta["format"],
        "rows": result.rows,
        "sha256": meta["sha256"],
        "counts": meta.get("counts"),
        "split": meta.get("split"),
        "store": meta.get("store"),
    }
    if as_json:
        print_json(out)
        return
    table = field_table(f"qmind export {meta['kind']}")
    table.add_row("file", f"{result.path} ({meta['format']}, {result.rows} rows)")
    table.add_row("record", out["meta_file"])
    if meta.get("store"):
        table.add_row("store", meta["store"])
    for key, value in (meta.get("counts") or {}).items():
        table.add_row(key.replace("_", " "), str(value))
    if meta.get("split"):
        s = meta["split"]
        table.add_row("train", f"{s['train_rows']} rows, goals {', '.join(s['train_goals']) or '-'}")
        table.add_row("eval", f"{s['eval_rows']} rows, goals {', '.join(s['eval_goals']) or '-'}")
    console.print(table)


@dataclasses.dataclass(frozen=True)
class StoreOptions:
    """What every export reads: the store, the output format, the filters, and how to print."""

    url: str | None
    fmt: str | None
    goals: str | None
    runs: str | None
    model_versions: str | None
    scorer_version: str
    as_json: bool

    def filters(self):
        return _filters(self.goals, self.runs, self.model_versions, self.scorer_version, self.as_json)


_STORE_OPTIONS = {
    "url": (str, typer.Option(None, "--url", help=URL_HELP)),
    "fmt": (str, typer.Option(None, "--format", help="jsonl or parquet (default: from the file extension).")),
    "goals": (str, typer.Option(None, "--goals", help="Comma-separated goal names to keep (default: all).")),
    "runs": (str, typer.Option(None, "--runs", help="Comma-separated run ids to keep (default: all).")),
    "model_versions": (str, typer.Option(None, "--model-versions",
                                         help="Comma-separated model-version names or ids.")),
    "scorer_version": (str, typer.Option(
        "", "--scorer-version",
        help="Evaluations of this scorer version (default: the current one; 'all': each candidate's latest).")),
    "as_json": (bool, typer.Option(False, "--json", help="Print one JSON object.")),
}


def _export(store: StoreOptions, export, out: pathlib.Path, *, read_store: bool = True, **options) -> None:
    """Run ``export`` (``training.export``'s) on the store with the common options, then report what it wrote."""
    filters = store.filters()  # bad filters are usage errors before the store is opened
    with training_errors(store.url, as_json=store.as_json):
        result = export(_engine(store.url) if read_store else None, out, filters=filters, fmt=store.fmt, **options)
    _report(result, store.as_json)


def with_store_options(command):
    """Declare the store options once: ``command`` gets them (after its own) as one ``store: StoreOptions``."""
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "store"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
             for name, (kind, option) in _STORE_OPTIONS.items()]

    @functools.wraps(command)
    def run(**kwargs):
        store = StoreOptions(**{name: kwargs.pop(name) for name in _STORE_OPTIONS})
        return command(**kwargs, store=store)

    run.__signature__ = inspect.Signature([*own, *added])
    return run


@export_app.command("sft")
@with_store_options
def export_sft_cmd(
    out: pathlib.Path = typer.Option(..., "--out", "-o", help=OUT_HELP),
    max_error: float = typer.Option(
        0.05, "--max-error", help="Largest VQE energy error kept (seed reward >= 1 - 10 x this)."
    ),
    allow_barren_plateau: bool = typer.Option(
        False, "--allow-barren-plateau", help="Keep candidates flagged or not checked for barren plateaus."
    ),
    eval_fraction: float = typer.Option(0.1, "--eval-fraction", help="Share of goals held out for eval."),
    eval_goals: str = typer.Option(
        None, "--eval-goals", help="Comma-separated goals for the eval split (overrides --eval-fraction)."
    ),
    seed: int = typer.Option(42, "--seed", help="Seed of the goal split."),
    prompt_source: str = typer.Option(
        "stored",
        "--prompt-source",
        help="stored (the prompt the loop asked) or goal (re-rendered, empty CONTEXT).",
    ),
    store: StoreOptions = None,
) -> None:
    """(prompt, verified completion) pairs in chat format for SFT, split by goal."""
    from training.export import export_sft
    from training.store_rows import SFTQuality

    _export(
        store,
        export_sft,
        out,
        quality=SFTQuality(max_error=max_error, allow_barren_plateau=allow_barren_plateau),
        eval_fraction=eval_fraction,
        eval_goals=split_list(eval_goals),
        seed=seed,
        prompt_source=prompt_source,
    )


@export_app.command("grpo")
@with_store_options
def export_grpo_cmd(
    out: pathlib.Path = typer.Option(..., "--out", "-o", help=OUT_HELP),
    fresh_prompts: bool = typer.Option(
        False,
        "--fresh-prompts",
        help="One context-free prompt per goal instead of the prompts the loop "
        "asked; with --no-store, goals come from --goals (built-in or YAML).",
    ),
    repeat: int = typer.Option(1, "--repeat", help="Repeat every prompt row this many times."),
    max_per_goal: int = typer.Option(None, "--max-per-goal", help="Keep at most this many prompts per goal."),
    no_store: bool = typer.Option(
        False, "--no-store", help="Do not read a store (needs --fresh-prompts --goals)."
    ),
    store: StoreOptions = None,
) -> None:
    """Conversational prompt rows with the goal's columns, for GRPOTrainer's reward functions."""
    from training.export import export_grpo

    if no_store and not (fresh_prompts and store.filters().goals):
        usage_error(
            "--no-store needs --fresh-prompts and --goals (there are no stored prompts to read)",
            as_json=store.as_json,
        )
    _export(store, export_grpo, out, read_store=not no_store, fresh_prompts=fresh_prompts, repeat=repeat,
            max_per_goal=max_per_goal)


@export_app.command("rewards")
@with_store_options
def export_rewards_cmd(
    out: pathlib.Path = typer.Option(..., "--out", "-o", help=OUT_HELP),
    store: StoreOptions = None,
) -> None:
    """(prompt, completion, reward components, model version, temperature) for every judged candidate."""
    from training.export import export_rewards

    _export(store, export_rewards, out)
