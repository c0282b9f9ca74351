"""``qmind train base``: train the project's own small Qwen2 code model from nothing (training/base_model.py)."""

from __future__ import annotations

import pathlib
from typing import Annotated

import typer

from training.base_config import BaseSettings

from .common import console, print_json
from .export import training_errors
from .options import settings_options
from .train import _progress, train_app

DEFAULT_OUT = pathlib.Path("models/base/qmind-mini")


@train_app.command("base")
@settings_options(BaseSettings)
def train_base_cmd(
    out: Annotated[pathlib.Path, typer.Option("--out", help="Checkpoint folder.")] = DEFAULT_OUT,
    url: Annotated[str | None, typer.Option(help="Add this store's verified training-goal candidates.")] = None,
    corpus: Annotated[pathlib.Path | None, typer.Option(help="Read the corpus from a --save-corpus file.")] = None,
    save_corpus: Annotated[pathlib.Path | None, typer.Option(help="Write the corpus (JSON Lines).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (progress on stderr).")] = False,
    given: dict | None = None,
) -> None:
    """Train a small Qwen2 code model from nothing on procedural programs (and a store's verified candidates)
    for the training goals; the held-out goals never enter the corpus."""
    from training.base_model import train_base
    from training.fields import with_paths

    with training_errors(url, as_json=as_json):
        try:
            settings = with_paths(BaseSettings(), given or {})
            settings.shape()
        except ValueError as exc:
            from training.errors import TrainingError

            raise TrainingError(str(exc)) from exc
        engine = None
        if url:
            from db.session import make_engine

            engine = make_engine(url)
        with _progress(as_json):
            result = train_base(out, settings, engine=engine, corpus=corpus, save_corpus=save_corpus)
    r = result.record
    summary = {"checkpoint": result.path, **{k: r[k] for k in ("size", "parameters", "steps", "first_loss",
                                                                 "final_loss", "device", "threads", "tokens_per_second",
                                                                 "total_seconds")},
               "examples": r["corpus"]["examples"], "held_out": r["held_out"]}
    if as_json:
        print_json(summary)
    else:
        for k, v in summary.items():
            console.print(f"[bold]{k}[/]: {v}")
