"""``qmind cluster up|down|status``: CPU workers, a GPU worker per GPU and Flower as daemons on this machine,
against the Redis and database the environment names (QMIND_BROKER_URL, QMIND_DATABASE_URL); pid files and logs
in QMIND_CLUSTER_DIR (default ``.qmind/cluster``)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from scheduler.cluster import (
    ClusterConfig,
    ClusterError,
    ProcessState,
    count_gpus,
    log_tail,
    plan,
    read_states,
    start,
    stop,
)

from . import app
from .common import console, err_console, print_json, usage_error

cluster_app = typer.Typer(help="A local cluster without containers: workers and Flower as daemons.",
                          no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")

DIR_HELP = "Directory for pid files and logs (default: QMIND_CLUSTER_DIR, else .qmind/cluster)."


def _configs(directory: Path | None, *, as_json: bool):
    from workers.config import QueueConfig, QueueConfigError

    try:
        queue, cluster = QueueConfig(), ClusterConfig()
        queue.check()
    except (QueueConfigError, ValueError) as exc:
        usage_error(str(exc), as_json=as_json)
    return queue, cluster, Path(directory or cluster.cluster_dir)


def _fail(message: str, *, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        print_json({"error": message, **(extra or {})})
    else:
        err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=1)


def _celery(queue_config):
    from workers.app import app as celery_app
    from workers.app import configure

    return configure(celery_app, queue_config)


def _table(rows: list[dict], title: str) -> None:
    table = Table(title=title)
    for col in ("name", "pid", "alive", "ping", "action", "log"):
        table.add_column(col)
    for r in rows:
        ping = "" if r.get("ping") is None else ("pong" if r["ping"] else "no answer")
        table.add_row(r["name"], str(r["pid"] or ""), "alive" if r["alive"] else "dead", ping, r.get("action", ""),
                      r["log"])
    console.print(table)


def _rows(states: list[ProcessState], answered: set[str] | None) -> list[dict]:
    rows = []
    for s in states:
        row = s.to_dict()
        row["ping"] = None if s.node is None or answered is None else s.node in answered
        rows.append(row)
    return rows


@cluster_app.command("up")
def up(
    cpu_workers: int = typer.Option(None, "--cpu-workers", min=0,
                                    help="CPU workers to start (default: QMIND_CLUSTER_CPU_WORKERS, 1)."),
    concurrency: int = typer.Option(None, "--concurrency", "-c", min=1,
                                    help="Processes per CPU worker (default: QMIND_WORKER_CONCURRENCY, else cores)."),
    gpus: str = typer.Option("auto", "--gpus", help="auto (one GPU worker per GPU found) or a number (0 = none)."),
    flower: bool = typer.Option(True, "--flower/--no-flower", help="Start Flower (needs QMIND_FLOWER_USER/_PASSWORD)."),
    directory: Path = typer.Option(None, "--dir", help=DIR_HELP),
    wait: float = typer.Option(None, "--wait", min=0,
                               help="Seconds to wait until all answer (default: QMIND_CLUSTER_START_TIMEOUT_S)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Start the cluster's daemons (those already running are left alone) and wait until they answer."""
    from scheduler.cluster_health import check_flower

    queue, cluster, directory = _configs(directory, as_json=as_json)
    _preflight(queue, gpus, flower, as_json=as_json)
    n_gpus = count_gpus() if gpus == "auto" else int(gpus)
    specs = plan(cpu_workers=cluster.cluster_cpu_workers if cpu_workers is None else cpu_workers,
                 concurrency=concurrency, gpus=n_gpus, flower=flower)
    if not specs:
        usage_error("nothing to start: --cpu-workers 0, no GPU worker and --no-flower", as_json=as_json)
    started = {s.name: s for s in start(directory, specs)}
    nodes = {s.node for s in specs if s.node}
    deadline = time.monotonic() + (cluster.cluster_start_timeout_s if wait is None else wait)
    states, answered, flower_up = _wait_until_up(directory, started, nodes, queue, flower, deadline)
    dead = [s for s in states.values() if not s.alive]
    ready = not dead and nodes <= answered and flower_up
    rows = _rows([states.get(n, started[n]) for n in started], answered)
    for r in rows:
        r["action"] = started[r["name"]].action
    result = {"dir": str(directory), "ready": ready, "processes": rows, "gpus": n_gpus}
    if flower:
        result["flower"] = check_flower(queue) if flower_up else {"url": None, "listening": False}
    if not ready:
        why = [f"{s.name} exited (log {s.log}):\n{log_tail(s.log)}" for s in dead]
        why += [f"{n} did not answer a ping" for n in sorted(nodes - answered) if not any(d.node == n for d in dead)]
        if flower and not flower_up and not any(d.name == "flower" for d in dead):
            why.append("Flower is not listening")
        _fail("the cluster did not come up: " + "; ".join(why) + f". Logs in {directory}; `qmind cluster down` "
              "stops what did start", as_json=as_json, extra=result)
    if as_json:
        print_json(result)
        return
    _table(rows, f"quantum-mind cluster in {directory}")
    if flower:
        console.print(f"Flower: {result['flower'].get('url')} (basic auth)")


def _preflight(queue, gpus: str, flower: bool, *, as_json: bool) -> None:
    """Refuse, before anything starts: a bad --gpus, Flower without its credentials, an unreachable broker or
    store."""
    from scheduler.cluster_health import check_broker, check_store

    if gpus != "auto" and not gpus.isdigit():
        usage_error(f"--gpus must be 'auto' or a number, got '{gpus}'", as_json=as_json)
    if flower:
        from workers.launch import LaunchError, flower_basic_auth

        try:
            flower_basic_auth(queue, alternative="; or pass --no-flower")
        except LaunchError as exc:
            usage_error(str(exc), as_json=as_json)
    try:
        check_broker(queue)
        check_store(queue)
    except ClusterError as exc:
        _fail(f"{exc}. Nothing was started.", as_json=as_json)


def _wait_until_up(directory: Path, started: dict, nodes: set[str], queue, flower: bool,
                   deadline: float) -> tuple[dict[str, ProcessState], set[str], bool]:
    """Poll until every started process is alive, every worker node answers a ping and Flower listens, one of
    them died, or the deadline passed: (states by name, nodes that answered, Flower listening)."""
    from scheduler.cluster_health import flower_listening, ping_workers

    celery_app = _celery(queue)
    while True:
        states = {s.name: s for s in read_states(directory) if s.name in started}
        dead = any(not s.alive for s in states.values())
        answered = ping_workers(celery_app, timeout_s=1.0) if nodes else set()
        flower_up = not flower or flower_listening(queue)
        if dead or (nodes <= answered and flower_up) or time.monotonic() >= deadline:
            return states, answered, flower_up
        time.sleep(0.5)


@cluster_app.command("down")
def down(
    directory: Path = typer.Option(None, "--dir", help=DIR_HELP),
    timeout: float = typer.Option(None, "--timeout", min=0,
                                  help="Seconds of warm shutdown before SIGKILL (default: QMIND_CLUSTER_STOP_TIMEOUT_S)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Stop every daemon of the cluster (SIGTERM, then SIGKILL after the timeout) and remove the pid files."""
    cluster = ClusterConfig()
    directory = Path(directory or cluster.cluster_dir)
    states = stop(directory, timeout_s=cluster.cluster_stop_timeout_s if timeout is None else timeout) \
        if directory.is_dir() else []
    rows = _rows(states, None)
    if as_json:
        print_json({"dir": str(directory), "processes": rows})
    elif not rows:
        console.print(f"nothing running in {directory}")
    else:
        _table(rows, f"stopped the quantum-mind cluster in {directory}")


@cluster_app.command("status")
def status(
    directory: Path = typer.Option(None, "--dir", help=DIR_HELP),
    timeout: float = typer.Option(2.0, "--timeout", min=0.1, help="Seconds to wait for ping answers."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Each daemon alive or dead, each worker's `celery inspect ping`, Flower's auth; exit 1 unless all healthy."""
    from scheduler.cluster_health import check_broker, check_flower, ping_workers

    queue, _cluster, directory = _configs(directory, as_json=as_json)
    states = read_states(directory) if directory.is_dir() else []
    broker_error = None
    try:
        check_broker(queue)
        answered = ping_workers(_celery(queue), timeout_s=timeout)
    except ClusterError as exc:
        broker_error, answered = str(exc), set()
    rows = _rows(states, answered)
    ours = {s.node for s in states if s.node}
    result = {"dir": str(directory), "processes": rows, "broker": broker_error or "ok",
              "other_workers": sorted(answered - ours)}
    if any(s.name == "flower" for s in states):
        result["flower"] = check_flower(queue)
    result["healthy"] = bool(rows) and broker_error is None and all(
        r["alive"] and r["ping"] is not False for r in rows) and result.get("flower", {"ok": True})["ok"]
    if as_json:
        print_json(result)
    else:
        if rows:
            _table(rows, f"quantum-mind cluster in {directory}")
        else:
            console.print(f"no cluster processes recorded in {directory}")
        if broker_error:
            err_console.print(f"[bold red]broker:[/] {broker_error}", highlight=False)
        if result["other_workers"]:
            console.print("other workers on this broker: " + ", ".join(result["other_workers"]))
        if "flower" in result:
            f = result["flower"]
            console.print(f"Flower {f['url']}: " + ("ok (basic auth enforced)" if f["ok"] else f"NOT OK {f}"))
        console.print("healthy" if result["healthy"] else "[bold red]not healthy[/]")
    if not result["healthy"]:
        raise typer.Exit(code=1)
