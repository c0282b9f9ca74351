"""``qmind discover``: the discovery loop."""

from __future__ import annotations

import typer
from rich.table import Table

from workers.evaluation.errors import GoalError
from workers.evaluation.goals import get_goal

from . import app
from .common import (
    HARDWARE_HELP,
    HARDWARE_SHOTS_HELP,
    console,
    err_console,
    print_json,
    usage_error,
    with_hardware,
)

GENERATORS = ("procedural", "transformers", "vllm", "vllm-server")
EXAMPLE_SQL = ("SELECT rank, vqe_error, depth, num_two_qubit_gates, code_sha256 FROM best_candidates "
               "WHERE goal_name = '{goal}' AND rank <= 5")


@app.command("discover")
def discover(
    goal: list[str] = typer.Option(None, "--goal", "-g", help="Goal name or YAML file; repeat for several goals."),
    iterations: int = typer.Option(5, "--iterations", "-n", min=1, max=10_000, help="Iterations to run."),
    generator: str = typer.Option("procedural", "--generator", help=f"One of {', '.join(GENERATORS)}."),
    model: str = typer.Option(None, "--model", help="Model name from the model table, or a local directory."),
    adapter: str = typer.Option(None, "--adapter", help="Adapter folder, latest, or a version (resolved by the workers at each task)."),
    prompts: int = typer.Option(4, "--prompts-per-iteration", "-k", min=1, max=1024,
                                help="Prompts per goal and iteration (3 candidates each)."),
    target_error: float = typer.Option(None, "--target-error", min=0.0,
                                       help="Stop a goal once its best energy error is at or below this."),
    resume: int = typer.Option(None, "--resume", help="Continue an interrupted run by its id."),
    seed: int = typer.Option(0, "--seed", help="Seeds prompts, samplers and evaluations."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Do not score the baseline ansätze."),
    report_dir: str = typer.Option("reports", "--report-dir",
                                   help="Where <store-label>/run-<id>/ reports are written."),
    hardware: bool = typer.Option(False, "--hardware", help=HARDWARE_HELP),
    hardware_shots: int = typer.Option(4000, "--hardware-shots", help=HARDWARE_SHOTS_HELP),
    fail_without_workers: bool = typer.Option(
        False, "--fail-without-workers",
        help="Stop (run stored as failed, resumable) when no worker consumes a queue the run waits on, instead of "
             "saying so and waiting."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary object (no progress bars)."),
) -> None:
    """Discover ansätze: generate candidates, evaluate them through the queue, feed the best back into the prompt.

    With no QMIND_BROKER_URL everything runs in this process (SQLite store qmind.db by default); with a broker the
    same run is spread over `qmind worker --queues gpu|cpu` processes.
    """
    from db.errors import StoreError
    from scheduler.loop import DiscoveryError, DiscoveryLoop, resume_goals
    from scheduler.progress import LoopProgress
    from training.errors import TrainingError

    _check_options(goal, generator=generator, model=model, adapter=adapter, resume=resume, as_json=as_json)
    try:
        from workers.app import app as celery_app
        from workers.app import current_config
        from workers.store import get_engine

        engine = get_engine(current_config(celery_app))
        if resume is not None:
            goals, config = resume_goals(engine, resume)
        else:
            goals, config = _new_run(engine, goal, generator=generator, model=model, adapter=adapter,
                                     hardware=hardware, hardware_shots=hardware_shots, iterations=iterations,
                                     prompts_per_iteration=prompts, target_error=target_error, seed=seed,
                                     baselines=not no_baselines, report_root=report_dir)
    except (GoalError, DiscoveryError, StoreError, ValueError, TrainingError) as exc:
        usage_error(str(exc), as_json=as_json)

    progress = LoopProgress(enabled=not as_json)
    loop = DiscoveryLoop(goals, config, engine=engine, resume_run_id=resume, progress=progress,
                         log=lambda msg: err_console.print(msg), fail_without_workers=fail_without_workers)
    summary = _run(loop, as_json=as_json)
    if as_json:
        print_json(summary.to_json())
        return
    render_summary(summary)


def _check_options(goal: list[str] | None, *, generator: str, model: str | None, adapter: str | None,
                   resume: int | None, as_json: bool) -> None:
    if generator not in GENERATORS:
        usage_error(f"unknown --generator '{generator}'; valid: {', '.join(GENERATORS)}", as_json=as_json)
    if generator == "procedural" and (model or adapter):
        usage_error("--model/--adapter need a model backend: add --generator transformers (or vllm)",
                    as_json=as_json)
    if resume is None and not goal:
        usage_error("give at least one --goal (e.g. --goal tfim-6; `qmind goals list` shows them) or --resume RUN_ID",
                    as_json=as_json)
    if resume is not None and goal:
        usage_error("--resume continues a run with its own goals and settings; drop --goal", as_json=as_json)


def _new_run(engine, goal_names: list[str], *, generator: str, model: str | None, adapter: str | None,
             hardware: bool, hardware_shots: int, **loop_options):
    """The goals and the DiscoveryConfig of a new run (model and adapter names checked before anything is
    written)."""
    from scheduler.loop import DiscoveryConfig

    goals = [with_hardware(get_goal(name), enabled=hardware, shots=hardware_shots)
             for name in dict.fromkeys(goal_names)]
    gen = {"generator": generator}
    if model:
        gen["model"] = model
    if adapter:
        from training.registry import is_registry_name, resolve_adapter

        # latest / quantum-mind-vN must exist now; a registry name stays a name, so the workers resolve it at each
        # task (a version registered during the run is used by the next generation task)
        resolved = resolve_adapter(engine, adapter)
        gen["adapter"] = adapter if is_registry_name(adapter) else resolved
    config = DiscoveryConfig(generator=gen, **loop_options)
    if generator != "procedural":
        from workers.generation.config import GeneratorConfig

        GeneratorConfig(**gen)  # validates model/adapter names before anything is written
    return goals, config


def _run(loop, *, as_json: bool):
    """``loop.run()``, with every way it can stop told as what to do next (resume, fix the cause)."""
    from db.errors import StoreError
    from scheduler.loop import DiscoveryError
    from workers.launch import NoConsumerError
    from workers.submit import QueueUnavailableError

    try:
        return loop.run()
    except KeyboardInterrupt:
        err_console.print(f"\n[bold yellow]interrupted.[/] Run {loop.run_id} is stored as 'stopped' and consistent; "
                          f"continue it with:\n  qmind discover --resume {loop.run_id}")
        raise typer.Exit(code=130) from None
    except (QueueUnavailableError, DiscoveryError, StoreError, NoConsumerError) as exc:
        msg = str(exc)
        if loop.run_id is not None:
            msg += f"\nrun {loop.run_id} is stored as 'failed'; fix the cause and continue it with: " \
                   f"qmind discover --resume {loop.run_id}"
        usage_error(msg, as_json=as_json)
    except TimeoutError as exc:
        usage_error(f"{exc}\ncontinue later with: qmind discover --resume {loop.run_id}", as_json=as_json)


def render_summary(summary) -> None:
    for g in summary.goals:
        table = Table(title=f"{g.goal}: best discovered vs baselines (exact energy {g.exact_energy:.8f})")
        table.add_column("candidate", ratio=1, overflow="fold")  # the label wraps; the numbers never do
        for col, width in (("error", 8), ("depth", 5), ("params", 6), ("2q gates", 5), ("decay/qubit", 6), ("BP", 3)):
            table.add_column(col, justify="right", no_wrap=True, min_width=width)

        def row(label, r, style=None, table=table):
            table.add_row(label, "-" if r.get("error") is None else f"{r['error']:.2e}", str(r.get("depth", "-")),
                          str(r.get("num_parameters", "-")), str(r.get("two_qubit_gates", "-")),
                          "-" if r.get("decay_rate") is None else f"{r['decay_rate']:+.3f}",
                          "yes" if r.get("has_barren_plateau") else "no", style=style)

        if g.best:
            row(f"discovered (it. {g.best['iteration']})", g.best, style="bold green")
        for b in sorted(g.baselines, key=lambda b: (b["error"] is None, b["error"] or 0)):
            row(f"baseline {b['label']}", b)
        if not g.best:
            table.caption = "no valid candidate discovered yet"
        console.print(table)
    best_goal = summary.goals[0].goal if summary.goals else "tfim-6"
    if summary.goals and summary.goals[0].best:
        b = summary.goals[0].best
        console.print(f"[bold]best result[/] for {best_goal}: energy error {b['error']:.3e} with depth {b['depth']}, "
                      f"{b['two_qubit_gates']} two-qubit gates, {b['num_parameters']} parameters")
    console.print(f"[bold]run[/] {summary.run_id} {summary.status} after {summary.iterations_done} iteration(s) "
                  f"in {summary.seconds:.0f} s")
    console.print(f"[bold]report[/] {summary.report}")
    console.print("[bold]query the history[/], e.g.:\n  qmind sql \"" + EXAMPLE_SQL.format(goal=best_goal) + "\"")
