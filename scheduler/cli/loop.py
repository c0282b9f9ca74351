"""``qmind loop``: discover -> export -> GRPO -> register -> discover with the new adapter, in rounds, resumable."""

from __future__ import annotations

import contextlib
import sys

import typer
from rich.table import Table

from training.grpo_config import GRPOSettings

from . import app
from .common import console, err_console, print_json, usage_error
from .options import settings_options


@app.command("loop")
@settings_options(GRPOSettings)
def loop_cmd(
    goal: list[str] = typer.Option(..., "--goal", "-g", help="Goal name or YAML file; repeat for several goals."),
    rounds: int = typer.Option(2, "--rounds", "-r", min=1, max=1000, help="Train-and-register rounds."),
    adapter: str = typer.Option(None, "--adapter", help="Start from this adapter (folder, latest, or a version); "
                                                        "default: round 1 trains a new LoRA on the base."),
    iterations: int = typer.Option(2, "--iterations", "-n", min=1, help="Discovery iterations per round."),
    prompts: int = typer.Option(4, "--prompts-per-iteration", "-k", min=1, help="Prompts per goal and iteration."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Discovery completion length (default 1024)."),
    device: str = typer.Option(None, "--device", help="Discovery generator device (default auto)."),
    bp_samples: int = typer.Option(None, "--bp-samples", help="Barren-plateau samples per size (GRPO reward)."),
    restarts: int = typer.Option(None, "--restarts", help="VQE restarts per completion (GRPO reward)."),
    baselines: bool = typer.Option(False, "--baselines/--no-baselines", help="Score the baselines each round."),
    checkpoints: str = typer.Option("models/checkpoints", "--checkpoints", help="Folder of quantum-mind-vN."),
    trainer_dir: str = typer.Option("models/trainer", "--trainer-dir", help="Where trainer checkpoints go."),
    report_dir: str = typer.Option("reports", "--report-dir", help="Where <store-label>/loop-<key>/ goes."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress goes to stderr)."),
    given: dict | None = None,
) -> None:
    """Close the loop: each round discovers with the current adapter, trains GRPO on that round's prompts (every
    `qmind train grpo` setting applies; --model is the base for both), registers the new adapter and uses it in
    the next round; a closing discovery measures the last adapter.

    Rerun with the same arguments to continue a loop that was stopped: finished steps are not repeated. The report
    (report.json, reward.png: mean reward per round) is written under --report-dir/<store-label>/loop-<key>/.
    """
    from scheduler.rounds import LoopSettings

    grpo = dict(given or {})
    settings = LoopSettings(
        goals=tuple(dict.fromkeys(goal)), rounds=rounds, model=grpo.pop("base_model", None), adapter=adapter,
        iterations=iterations, prompts_per_iteration=prompts,
        generator={k: v for k, v in (("max_new_tokens", max_new_tokens), ("device", device)) if v is not None},
        grpo=grpo, evaluation={k: v for k, v in (("bp_samples", bp_samples), ("restarts", restarts)) if v is not None},
        baselines=baselines, seed=int(grpo.get("seed", 0)), checkpoints=checkpoints, trainer_dir=trainer_dir,
        report_root=report_dir)
    report = _run(settings, as_json=as_json)
    if as_json:
        print_json(report)
        return
    _render(report)


def _run(settings, *, as_json: bool) -> dict:
    from db.errors import StoreError
    from scheduler.loop import DiscoveryError
    from scheduler.progress import LoopProgress
    from scheduler.rounds import LoopError, TrainingLoop
    from training.errors import TrainingError
    from workers.app import app as celery_app
    from workers.app import current_config
    from workers.evaluation.errors import GoalError
    from workers.evaluation.goals import get_goal
    from workers.store import get_engine

    try:
        goals = [get_goal(name) for name in settings.goals]
        engine = get_engine(current_config(celery_app))
        loop = TrainingLoop(settings, goals, engine=engine, notify=lambda m: err_console.print(m, highlight=False),
                            progress_factory=None if as_json else (lambda: LoopProgress(enabled=True)))
        err_console.print(f"loop {settings.key()}: state in {loop.state.path}")
        if not as_json:
            return loop.run()
        with contextlib.redirect_stdout(sys.stderr):  # the trainers print; stdout carries one JSON object
            return loop.run()
    except KeyboardInterrupt:
        err_console.print("\n[bold yellow]interrupted.[/] Rerun the same command to continue where it stopped.")
        raise typer.Exit(code=130) from None
    except (GoalError, DiscoveryError, StoreError, TrainingError, LoopError, ValueError) as exc:
        usage_error(f"{exc}\nrerun the same command to continue the loop once the cause is fixed",
                    as_json=as_json)


def _render(report: dict) -> None:
    table = Table(title=f"qmind loop {report['loop']} ({report['status']})")
    for col in ("round", "adapter", "run", "candidates", "mean reward", "valid", "trained"):
        table.add_column(col, justify="right" if col not in ("adapter", "trained") else "left")
    for r in report["rounds"]:
        ci = f" ± {r['reward_ci95']:.3f}" if r.get("reward_ci95") else ""
        table.add_row(str(r["round"]), (r.get("adapter") or "base").rsplit("/", 1)[-1], str(r.get("run_id")),
                      str(r.get("candidates")), f"{r['reward_mean']:.4f}{ci}", f"{r['valid_fraction']:.0%}",
                      r.get("version") or "-")
    console.print(table)
    console.print(f"[bold]report[/] {report['folder']}/report.json\n[bold]plot[/] {report['plot']}")
