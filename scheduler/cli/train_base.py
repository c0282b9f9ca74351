"""``qmind train base``: train the project's own small Qwen2 code model from nothing (training/base_model.py)."""

from __future__ import annotations

import pathlib
from typing import Annotated

import typer

from .common import console, print_json
from .export import training_errors
from .train import _given, _progress, train_app

DEFAULT_OUT = pathlib.Path("models/base/qmind-mini")


@train_app.command("base")
def train_base_cmd(
    out: Annotated[pathlib.Path, typer.Option("--out", help="Checkpoint folder.")] = DEFAULT_OUT,
    size: Annotated[str | None, typer.Option("--size", help="cpu (~0.9 M parameters, default) or gpu (~25 M).")] = None,
    programs_per_goal: Annotated[int | None, typer.Option(help="Corpus programs per training goal (48).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps at most (default 2000).")] = None,
    time_budget: Annotated[float | None, typer.Option(help="Seconds for the whole run (default 540).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per step (default 8).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak rate (default 2e-3).")] = None,
    seed: Annotated[int | None, typer.Option(help="Corpus, weights and batch order (default 0).")] = None,
    workers: Annotated[int | None, typer.Option(help="Corpus processes (0: one per core).")] = None,
    url: Annotated[str | None, typer.Option(help="Add this store's verified training-goal candidates.")] = None,
    corpus: Annotated[pathlib.Path | None, typer.Option(help="Read the corpus from a --save-corpus file.")] = None,
    save_corpus: Annotated[pathlib.Path | None, typer.Option(help="Write the corpus (JSON Lines).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (progress on stderr).")] = False,
) -> None:
    """Train a small Qwen2 code model from nothing on procedural programs (and a store's verified candidates)
    for the training goals; the held-out goals never enter the corpus."""
    from training.base_config import BaseSettings
    from training.base_model import train_base

    with training_errors(url, as_json=as_json):
        try:
            settings = BaseSettings(**_given(
                size=size, programs_per_goal=programs_per_goal, max_steps=max_steps, time_budget_s=time_budget,
                batch_size=batch_size, learning_rate=learning_rate, seed=seed, workers=workers))
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
                                                                 "final_loss", "device", "total_seconds")},
               "examples": r["corpus"]["examples"], "held_out": r["held_out"]}
    if as_json:
        print_json(summary)
    else:
        for k, v in summary.items():
            console.print(f"[bold]{k}[/]: {v}")
