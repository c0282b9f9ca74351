"""A cluster on one machine without containers: CPU workers, one GPU worker per GPU and Flower, started as
daemons against the configured Redis and database, with pid files and logs in one directory.

``qmind cluster up|down|status`` is the command line over this module. Each process is described by a pid file
(JSON: pid, command, Celery node name) next to its log; a pid file whose process is gone, or whose pid now
belongs to another program, reads as dead. Starting is idempotent (a live process is left alone), stopping sends
SIGTERM to the process group (Celery's warm shutdown) and SIGKILL after a timeout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.launch import node_name

#: The project root (parent of the ``scheduler`` package): children import the project from here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ClusterError(RuntimeError):
    """The cluster cannot start or be reached; the message says what is missing and what to do."""


class ClusterConfig(BaseSettings):
    """Where the local cluster keeps its pid files and logs, and how many CPU workers it starts."""

    model_config = SettingsConfigDict(env_prefix="QMIND_", extra="ignore")

    cluster_dir: Path = Field(Path(".qmind/cluster"), description=(
        "Directory for the local cluster's pid files and logs (relative paths are from the current directory)"))
    cluster_cpu_workers: int = Field(1, ge=0, description=(
        "CPU worker processes (Celery prefork masters) `qmind cluster up` starts; each runs "
        "QMIND_WORKER_CONCURRENCY children"))
    cluster_start_timeout_s: float = Field(60.0, gt=0, description=(
        "How long `qmind cluster up` waits for every worker to answer a ping and Flower to listen"))
    cluster_stop_timeout_s: float = Field(30.0, gt=0, description=(
        "How long `qmind cluster down` waits after SIGTERM (warm shutdown) before SIGKILL"))


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    """One daemon of the cluster."""

    name: str
    """File stem of its pid file and log: cpu1, gpu0, flower."""
    argv: tuple[str, ...]
    """The command that starts it."""
    node: str | None = None
    """Celery node name (workers only), answered by ``celery inspect ping``."""


@dataclasses.dataclass(frozen=True)
class ProcessState:
    """What a pid file says and whether its process is alive."""

    name: str
    pid: int | None
    alive: bool
    log: str
    node: str | None = None
    action: str = ""
    """What this call did: started, running (already), stopped, killed, cleaned (stale pid file), or empty."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---- what to start ------------------------------------------------------------------------------------------------
def count_gpus() -> int:
    """GPUs on this machine: ``nvidia-smi -L``, else ``torch.cuda`` when torch is installed; 0 when neither."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15, check=False).stdout
            n = sum(1 for line in out.splitlines() if line.startswith("GPU "))
            if n:
                return n
        except (OSError, subprocess.TimeoutExpired):
            pass
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return 0
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA install means no usable GPU here
        return 0


def plan(*, cpu_workers: int, concurrency: int | None, gpus: int, flower: bool,
         host: str | None = None) -> list[ProcessSpec]:
    """The daemons of a cluster: ``cpu_workers`` CPU workers, one worker per GPU, and Flower."""
    host = host or socket.gethostname()
    cli = (sys.executable, "-m", "scheduler.cli")
    specs = []
    for i in range(1, cpu_workers + 1):
        node = node_name("cpu", i, host)
        argv = (*cli, "worker", "--queues", "cpu", "--hostname", node)
        if concurrency:
            argv += ("--concurrency", str(concurrency))
        specs.append(ProcessSpec(f"cpu{i}", argv, node))
    for g in range(gpus):
        node = node_name("gpu", g, host)
        specs.append(ProcessSpec(f"gpu{g}", (*cli, "worker", "--queues", "gpu", "--gpu", str(g), "--hostname", node),
                                 node))
    if flower:
        specs.append(ProcessSpec("flower", (*cli, "flower")))
    return specs


# ---- pid files ----------------------------------------------------------------------------------------------------
def _pid_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.pid"


def log_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.log"


def _read_pid_file(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def _is_ours_and_alive(pid: int, name: str) -> bool:
    """True when ``pid`` runs, is not a zombie, and is still a quantum-mind daemon (pids get reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else: the cmdline check decides
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return not Path("/proc/self").exists()  # no /proc (not Linux): trust kill(0)
    text = b" ".join(cmdline)
    if name == "flower":  # `qmind flower` execs `celery ... flower`
        return b"flower" in text
    return b"worker" in text and (b"scheduler.cli" in text or b"celery" in text or b"qmind" in text)


def read_states(directory: Path) -> list[ProcessState]:
    """Every process the directory has a pid file for, alive or dead, in a stable order."""
    states = []
    for path in sorted(directory.glob("*.pid"), key=lambda p: _order(p.stem)):
        data = _read_pid_file(path)
        name = path.stem
        pid = data["pid"] if data else None
        states.append(ProcessState(name, pid, bool(pid) and _is_ours_and_alive(pid, name),
                                   str(log_path(directory, name)), (data or {}).get("node")))
    return states


def _order(name: str) -> tuple[int, str]:
    return ({"cpu": 0, "gpu": 1}.get(name[:3], 2), name.rjust(12))


# ---- start / stop -------------------------------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def start(directory: Path, specs: list[ProcessSpec]) -> list[ProcessState]:
    """Start every spec whose process is not already alive; returns one state per spec."""
    directory.mkdir(parents=True, exist_ok=True)
    live = {s.name: s for s in read_states(directory) if s.alive}
    out = []
    for spec in specs:
        log = log_path(directory, spec.name)
        if spec.name in live:
            st = live[spec.name]
            out.append(dataclasses.replace(st, action="running"))
            continue
        with open(log, "ab") as fh:
            fh.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}: "
                     f"{' '.join(spec.argv)}\n".encode())
            fh.flush()
            proc = subprocess.Popen(list(spec.argv), stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=_child_env(), close_fds=True)
        record = {"pid": proc.pid, "argv": list(spec.argv), "node": spec.node, "started_at": time.time()}
        tmp = _pid_path(directory, spec.name).with_suffix(".pid.tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(_pid_path(directory, spec.name))
        out.append(ProcessState(spec.name, proc.pid, True, str(log), spec.node, action="started"))
    return out


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a group whose members are all zombies is gone for our purpose
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return not Path("/proc/self").exists()


def stop(directory: Path, *, timeout_s: float, names: list[str] | None = None) -> list[ProcessState]:
    """SIGTERM each live process group (warm shutdown), SIGKILL what is left after ``timeout_s``; remove the pid
    files. Stale pid files (dead or reused pids) are removed without signalling anything."""
    states = [s for s in read_states(directory) if names is None or s.name in names]
    targets = [s for s in states if s.alive]
    for s in states:  # a master killed from outside may leave pool children behind in its process group
        if not s.alive and s.pid and _group_alive(s.pid):
            try:
                os.killpg(s.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for s in targets:
        try:
            os.killpg(s.pid, signal.SIGTERM)  # each daemon leads its own session and group
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    pending = {s.pid for s in targets}
    while pending and time.monotonic() < deadline:
        pending = {p for p in pending if _group_alive(p)}
        if pending:
            time.sleep(0.2)
    for pid in pending:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    out = []
    for s in states:
        _pid_path(directory, s.name).unlink(missing_ok=True)
        action = ("killed" if s.pid in pending else "stopped") if s.alive else "cleaned"
        out.append(dataclasses.replace(s, alive=False, action=action))
    return out


def log_tail(path: str | Path, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
