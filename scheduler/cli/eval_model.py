"""``qmind eval-model``: the seed's post-training validation of a model (+ adapter) on held-out goals."""

from __future__ import annotations

import typer
from rich.table import Table

from training.eval_run import EvalModelSettings

from . import app
from .common import console, print_json
from .export import training_errors
from .options import settings_options

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
@settings_options(EvalModelSettings)
def eval_model_cmd(
    url: str | None = typer.Option(
        None, "--url", help="Store for the results (default: QMIND_DATABASE_URL)."
    ),
    no_store: bool = typer.Option(
        False, "--no-store", help="Do not store the results with the model version."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    given: dict | None = None,
) -> None:
    """Syntax validity, verification pass, BP-free and novel-pattern rates against the seed's targets."""
    from training.eval_run import run_eval_model
    from training.fields import with_paths
    from workers.settings import scoring_settings

    from .models import adapter_option

    given = dict(given or {})
    given["adapter"] = adapter_option(given.get("adapter"), url, as_json=as_json)
    with training_errors(url, as_json=as_json):
        settings = with_paths(EvalModelSettings(), given)
        result, model_version_id = run_eval_model(settings, scoring=scoring_settings(), url=url, store=not no_store)
    if as_json:
        print_json({**result.to_dict(), "model_version_id": model_version_id})
    else:
        _render(result)
        if model_version_id is not None:
            console.print(f"stored with model version {model_version_id}")
