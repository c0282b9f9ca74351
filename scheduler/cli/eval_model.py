"""``qmind eval-model``: the seed's post-training validation of a model (+ adapter) on held-out goals."""

from __future__ import annotations

import pathlib

import typer
from pydantic import ValidationError
from rich.table import Table

from . import app
from .common import console, print_json, usage_error
from .export import split_list, training_errors

_NAMES = {
    "syntax_valid": "Syntax validity",
    "verification_pass": "Verification pass",
    "bp_free": "BP-free",
    "novel_patterns": "Novel patterns",
    "train_loss": "Training loss",
    "eval_loss": "Eval loss",
    "perplexity": "Perplexity",
}


def _render(result) -> None:
    table = Table(
        title=f"eval-model: {result.completions} completions on {', '.join(result.goals)} "
        f"({result.identity.get('generator')})"
    )
    for column in ("metric", "value", "target", "met"):
        table.add_column(column)
    for key, row in result.targets.items():
        value = row["value"]
        shown = "-" if value is None else (f"{value:.1%}" if key in result.rates else f"{value:.4g}")
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[row["met"]]
        table.add_row(_NAMES[key], shown, row["target"], met)
    console.print(table)
    console.print(
        f"statuses: {result.counts['statuses']}; novelty reference: {result.reference or 'none'}; "
        f"{result.seconds:.1f} s",
        highlight=False,
    )


@app.command("eval-model")
def eval_model_cmd(
    model: str | None = typer.Option(
        None, "--model", help="Base model (model-table name, Hub id or folder)."
    ),
    adapter: str | None = typer.Option(None, "--adapter", help="Adapter folder, latest, or quantum-mind-vN."),
    generator: str = typer.Option(
        "transformers",
        "--generator",
        help="transformers, vllm, vllm-server, or procedural (the no-model baseline).",
    ),
    prompts: int = typer.Option(20, "--prompts", help="Number of prompts (round-robin over the goals)."),
    goals: str | None = typer.Option(
        None,
        "--goals",
        help="Comma-separated held-out goals (default: the SFT "
        "export's eval goals, else built-ins not trained on).",
    ),
    training_data: pathlib.Path | None = typer.Option(
        None, "--training-data", help="SFT export for the novelty check (default: the adapter's config.yaml)."
    ),
    temperatures: str = typer.Option(
        "0.7", "--temperatures", help="Completions per prompt, one per temperature."
    ),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", help="Completion length (seed 1024)."
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed of the first prompt (prompt i uses seed + i)."),
    workers: int | None = typer.Option(None, "--workers", help="Judging processes (default: one per core)."),
    bp_samples: int | None = typer.Option(None, "--bp-samples", help="Barren-plateau samples per size."),
    with_vqe: bool = typer.Option(False, "--with-vqe", help="Also run VQE (not needed for the four rates)."),
    url: str | None = typer.Option(
        None, "--url", help="Store for the results (default: QMIND_DATABASE_URL)."
    ),
    no_store: bool = typer.Option(
        False, "--no-store", help="Do not store the results with the model version."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Syntax validity, verification pass, BP-free and novel-pattern rates against the seed's targets."""
    import dataclasses

    from training.evaluate_pool import EvaluationPool
    from training.model_eval import (
        Reference,
        evaluate_model,
        held_out_goals,
        losses_from_checkpoint,
        store_evaluation,
        training_data_of,
    )
    from workers.evaluation.goals import get_goal
    from workers.generation import build_generator
    from workers.generation.config import GeneratorConfig
    from workers.generation.errors import GenerationError
    from workers.settings import scoring_settings

    try:
        temps = tuple(float(t) for t in split_list(temperatures))
    except ValueError:
        usage_error(f"--temperatures must be comma-separated numbers, got {temperatures!r}", as_json=as_json)
    if prompts < 1:
        usage_error(f"--prompts must be at least 1, got {prompts}", as_json=as_json)
    from .models import adapter_option

    adapter = adapter_option(adapter, url, as_json=as_json)
    settings = {"generator": generator, "temperatures": temps, "seed": seed}
    if generator != "procedural":
        settings.update(
            {
                k: v
                for k, v in {
                    "model": model,
                    "adapter": adapter,
                    "max_new_tokens": max_new_tokens,
                    "device": device,
                }.items()
                if v is not None
            }
        )
    try:
        gen_config = GeneratorConfig(**settings)
    except ValidationError as exc:
        usage_error(
            "invalid generator settings: "
            + "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()),
            as_json=as_json,
        )
    with training_errors(url, as_json=as_json):
        data = str(training_data) if training_data else training_data_of(adapter)
        reference = Reference.from_export(data) if data else None
        goal_objs = [get_goal(g) for g in held_out_goals(reference, split_list(goals))]
        config = dataclasses.replace(scoring_settings().with_knobs(bp_samples=bp_samples or None), run_vqe=with_vqe)
        try:
            with EvaluationPool(workers=workers, seed=seed, config=config) as pool:
                result = evaluate_model(
                    build_generator(gen_config),
                    goal_objs,
                    prompts=prompts,
                    seed=seed,
                    pool=pool,
                    reference=reference,
                    losses=losses_from_checkpoint(adapter),
                    model=model,
                    adapter=adapter,
                )
        except GenerationError as exc:
            usage_error(str(exc), as_json=as_json)
        model_version_id = None
        if not no_store:
            from db.migrate import ensure_schema
            from db.session import make_engine

            engine = make_engine(url)
            ensure_schema(engine, upgrade=False)
            model_version_id = store_evaluation(engine, result)
    if as_json:
        print_json({**result.to_dict(), "model_version_id": model_version_id})
    else:
        _render(result)
        if model_version_id is not None:
            console.print(f"stored with model version {model_version_id}")
