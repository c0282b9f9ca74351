"""The compose stack, really running (`make test-deploy`; not part of `make test`, see docs/deploy.md): the images
`make images` built, deploy/docker-compose.yml brought up with Redis (password, AOF), PostgreSQL, the migration
job, Flower behind basic auth and two cpu-workers; discoveries with the procedural generator run in the loop
container. Checks: every candidate scored once; the sandbox inside the container isolates (no secret read, no
network, no leftover process); Flower and Redis refuse clients without credentials; and faults: a cpu-worker
killed mid-run, Redis restarted mid-run, PostgreSQL stopped for 20 s mid-run, `down` + `up` resuming the run.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from storehelpers import free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
IMAGES = ("quantum-mind/cpu-worker:latest", "quantum-mind/redis:latest", "quantum-mind/postgres:latest")
#: Compose v2 (scripts/install_compose_v2.sh): Debian's docker-compose 1.29 cannot pass the cpu-worker's
#: `systempaths=unconfined` to the engine ("invalid --security-opt"), so the stack needs v2.
COMPOSE_CMD = ("docker", "compose")

pytestmark = pytest.mark.deploy


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.project = f"qmdeploy{secrets.token_hex(3)}"
        self.runs = 0
        self.flower_port = free_port()
        self.secrets = {"REDIS_PASSWORD": secrets.token_hex(16), "POSTGRES_PASSWORD": secrets.token_hex(16),
                        "QMIND_FLOWER_USER": "admin", "QMIND_FLOWER_PASSWORD": secrets.token_hex(12)}
        env = {**self.secrets, "FLOWER_PORT": str(self.flower_port), "QMIND_REDIS_IMAGE": IMAGES[1],
               "QMIND_POSTGRES_IMAGE": IMAGES[2], "QMIND_WORKER_CONCURRENCY": "1", "QMIND_BP_SAMPLES": "20",
               "QMIND_VQE_RESTARTS": "1", "QMIND_LEASE_TTL_S": "6", "QMIND_RECONCILE_EVERY_S": "2",
               "QMIND_RETRY_BACKOFF_MAX_S": "5", "QMIND_RETRY_MAX": "30"}
        self.env_file = tmp / "stack.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        # compose passes the settings without a value in the file (QMIND_LEASE_TTL_S: ...) from its own environment;
        # it runs from deploy/, where Debian's docker-compose 1.29 resolves the seccomp profile's relative path
        self.process_env = {**os.environ, **env}

    def dc(self, *args: str, timeout: float = 300, check: bool = True, **kw) -> subprocess.CompletedProcess:
        cmd = [*COMPOSE_CMD, "-p", self.project, "-f", str(COMPOSE), "--env-file", str(self.env_file), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                             env=self.process_env, cwd=COMPOSE.parent, **kw)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    def up(self) -> None:
        self.dc("up", "-d", "--no-build", "--scale", "cpu-worker=2", "redis", "postgres", "migrate", "cpu-worker",
                "flower", timeout=600)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            ping = self.dc("exec", "-T", "cpu-worker", "celery", "-A", "workers.app", "inspect", "ping", "--timeout",
                           "5", check=False)
            if "2 nodes online" in ping.stdout:
                return
            time.sleep(3)
        logs = self.dc("logs", "--no-color", "cpu-worker", check=False).stdout
        raise AssertionError(f"the cpu-workers did not both answer a ping:\n{ping.stdout}\n{logs[-4000:]}")

    def sql(self, query: str) -> list[list[str]]:
        out = self.dc("exec", "-T", "postgres", "psql", "-U", "qmind", "-d", "qmind", "-At", "-F", "|", "-c", query)
        return [line.split("|") for line in out.stdout.strip().splitlines() if line]

    def discover(self, *args: str, background: bool = False, new: bool = True):
        self.runs += 1  # a seed of its own: new candidates, not verdicts an earlier run already stored
        run = ["--goal", "tfim-4", "--iterations", "1", "--no-baselines", "--seed", str(self.runs)] if new else []
        cmd = ["--profile", "discover", "run", "--rm", "-T", "discover", *run, "--json", *args]
        if background:
            return subprocess.Popen([*COMPOSE_CMD, "-p", self.project, "-f", str(COMPOSE), "--env-file",
                                     str(self.env_file), *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=self.process_env, cwd=COMPOSE.parent)
        return json.loads(self.dc(*cmd, timeout=600).stdout.strip().splitlines()[-1])

    def container(self, service: str, index: int = 1) -> str:
        return self.dc("ps", "-q", service, check=False).stdout.split()[index - 1]

    def candidate(self, code: str) -> dict:
        """Evaluate ``code`` with `qmind evaluate` inside a cpu-worker container (its user, seccomp, AppArmor)."""
        out = self.dc("exec", "-T", "cpu-worker", "sh", "-c",
                      "cat > /tmp/candidate.py && qmind evaluate --goal tfim-4 --code-file /tmp/candidate.py --json",
                      input=code, timeout=180)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def down(self) -> None:
        """Everything of this project goes: containers (one-off `run` ones too), networks, volumes."""
        left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
                              capture_output=True, text=True, check=False).stdout.split()
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True, check=False)
        self.dc("down", "-v", "--remove-orphans", timeout=300, check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True,
                                                        check=False).returncode != 0:
        pytest.fail("the stack test needs a running Docker engine (docs/deploy.md, 'Images')")
    if subprocess.run([*COMPOSE_CMD, "version"], capture_output=True, check=False).returncode != 0:
        pytest.fail("the stack test needs Compose v2: run scripts/install_compose_v2.sh")
    missing = [i for i in IMAGES if subprocess.run(["docker", "image", "inspect", i], capture_output=True,
                                                   check=False).returncode != 0]
    if missing:
        pytest.fail(f"images missing: {missing}; build them with `make images`")
    s = Stack(tmp_path_factory.mktemp("stack"))
    try:
        s.up()
        yield s
    finally:
        s.down()


def scored_once(s: Stack, run_id: int) -> dict:
    """Per run: candidates with code, distinct codes, evaluations of them, unfinished ones."""
    [[cands, codes, evals, pending]] = s.sql(f"""
        SELECT count(c.id), count(DISTINCT c.code_sha256), count(DISTINCT e.id),
               count(DISTINCT e.id) FILTER (WHERE e.status = 'pending')
        FROM candidates c JOIN generation_batches b ON b.id = c.batch_id
        LEFT JOIN evaluations e ON e.code_sha256 = c.code_sha256 AND e.goal_id = b.goal_id
        WHERE b.run_id = {run_id} AND c.code IS NOT NULL""")
    return {"candidates": int(cands), "codes": int(codes), "evaluations": int(evals), "pending": int(pending)}


def test_a_discovery_through_the_stack_scores_every_candidate_once(stack):
    summary = stack.discover("-k", "2")
    assert summary["status"] == "completed", summary
    counts = scored_once(stack, summary["run_id"])
    assert counts["evaluations"] == counts["codes"] > 0 and counts["pending"] == 0, counts
    hosts = {r[0] for r in stack.sql("SELECT DISTINCT worker_host FROM generation_batches WHERE iteration >= 0")}
    assert all(h.startswith("cpu@") for h in hosts), f"procedural generation ran on the cpu-workers: {hosts}"


def test_flower_refuses_requests_without_credentials(stack):
    url = f"http://127.0.0.1:{stack.flower_port}/workers"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 401
    token = base64.b64encode(f"admin:{stack.secrets['QMIND_FLOWER_PASSWORD']}".encode()).decode()
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Basic {token}"}),
                                timeout=10) as resp:
        assert resp.status == 200


def test_redis_refuses_a_client_without_the_password(stack):
    out = stack.dc("exec", "-T", "redis", "env", "-u", "REDISCLI_AUTH", "redis-cli", "ping", check=False)
    assert "NOAUTH" in out.stdout + out.stderr, out
    ok = stack.dc("exec", "-T", "redis", "redis-cli", "ping")
    assert "PONG" in ok.stdout


SNOOP = """
import os
def create_ansatz(n):
    seen = [repr(dict(os.environ))]
    for pid in ("1", str(os.getppid()), "self"):
        for what in ("environ", "cmdline"):
            try:
                seen.append(open(f"/proc/{pid}/{what}", "rb").read().decode(errors="replace"))
            except BaseException as exc:
                seen.append(f"DENIED {pid} {what} {type(exc).__name__}")
    for path in ("/srv/qmind", "/var/cache/qmind", "/opt/quantum-mind", "/etc/hostname"):
        try:
            seen.append(f"{path}: {os.listdir(path) if os.path.isdir(path) else open(path).read()}")
        except BaseException as exc:
            seen.append(f"DENIED {path} {type(exc).__name__}")
    raise RuntimeError("SAW " + " ; ".join(seen))
"""

NETWORK = """
import socket
def create_ansatz(n):
    out = []
    for host, port in (("redis", 6379), ("postgres", 5432), ("flower", 5555), ("1.1.1.1", 53)):
        try:
            socket.create_connection((host, port), timeout=3).close()
            out.append(f"CONNECTED {host}")
        except BaseException as exc:
            out.append(f"FAILED {host} {type(exc).__name__}")
    raise RuntimeError(" ; ".join(out))
"""

DAEMON = """
import ctypes, os, signal, time
from qiskit import QuantumCircuit
def create_ansatz(n):
    if os.fork() == 0:
        try:
            os.setsid()
        except BaseException:
            pass
        if os.fork() == 0:
            ctypes.CDLL(None).prctl(15, b"__MARKER__", 0, 0, 0)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(0.1)
        os._exit(0)
    return QuantumCircuit(n)
"""

PROCESS_NAMES = ("python3 -c \"import os; print(' '.join(open(f'/proc/{p}/comm').read().strip() "
                 "for p in os.listdir('/proc') if p.isdigit()))\"")


def test_the_sandbox_inside_the_container_reads_no_secret_reaches_no_network_and_leaves_no_process(stack):
    snoop = " ".join(stack.candidate(SNOOP)["errors"])
    assert "SAW" in snoop, snoop
    for name, value in stack.secrets.items():
        assert value not in snoop, f"the candidate read {name}"
    network = " ".join(stack.candidate(NETWORK)["errors"])
    assert "CONNECTED" not in network and network.count("FAILED") == 4, network
    marker = "qm" + secrets.token_hex(6)
    stack.candidate(DAEMON.replace("__MARKER__", marker))
    names = stack.dc("exec", "-T", "cpu-worker", "sh", "-c", PROCESS_NAMES).stdout
    assert marker not in names, f"a candidate's daemon survived in the container: {names}"


# ---- faults -----------------------------------------------------------------------------------------------------
def _run_with_fault(stack: Stack, fault, *, prompts: int = 4) -> tuple[dict, dict]:
    """A discovery in the loop container; ``fault()`` once an evaluation has begun; the summary and counts."""
    proc = stack.discover("-k", str(prompts), background=True)
    deadline = time.monotonic() + 300
    while not stack.sql("SELECT id FROM evaluations WHERE status = 'pending' AND attempts >= 1 LIMIT 1"):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.3)
    started = time.monotonic()
    fault()
    out, err = proc.communicate(timeout=600)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"{out[-2000:]}\n{err[-3000:]}"
    summary = json.loads(out.strip().splitlines()[-1])
    counts = scored_once(stack, summary["run_id"])
    print(f"\n{fault.__name__}: run {summary['run_id']} {summary['status']} {seconds:.0f} s after the fault; "
          f"{counts}")
    assert summary["status"] == "completed"
    assert counts["evaluations"] == counts["codes"] > 0 and counts["pending"] == 0, counts
    return summary, counts


def test_a_killed_cpu_worker_leaves_its_tasks_to_the_other_with_one_row_each(stack):
    def kill_a_cpu_worker():
        subprocess.run(["docker", "kill", stack.container("cpu-worker", 1)], check=True, capture_output=True)

    _run_with_fault(stack, kill_a_cpu_worker)
    stack.up()  # back to two workers (restart: unless-stopped does not restart a killed container)


def test_a_redis_restart_mid_run_loses_no_task(stack):
    def restart_redis():
        stack.dc("restart", "redis")

    _run_with_fault(stack, restart_redis)


def test_postgres_stopped_for_20_s_mid_run_loses_and_duplicates_no_task(stack):
    def stop_postgres_20_s():
        stack.dc("stop", "postgres")
        time.sleep(20)
        stack.dc("start", "postgres")

    _run_with_fault(stack, stop_postgres_20_s)


def test_down_and_up_resumes_the_interrupted_run(stack):
    proc = stack.discover("-k", "4", background=True)
    deadline = time.monotonic() + 300
    while not stack.sql("SELECT id FROM evaluations WHERE status = 'pending' AND attempts >= 1 LIMIT 1"):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.3)
    [[run_id]] = stack.sql("SELECT max(id) FROM runs")
    # everything stops, the loop container too (a one-off `run` container, which `down` leaves alone); volumes
    # are kept, so the store and Redis's AOF survive
    loop = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.project}",
                           "--filter", "label=com.docker.compose.oneoff=True"], capture_output=True, text=True,
                          check=True).stdout.split()
    subprocess.run(["docker", "kill", *loop], capture_output=True, check=True)
    proc.wait(120)
    stack.dc("down", timeout=300)
    stack.up()
    summary = stack.discover("--resume", run_id, new=False)
    counts = scored_once(stack, int(run_id))
    print(f"\ndown + up: run {run_id} resumed: {summary['status']}; {counts}")
    assert summary["status"] == "completed" and counts["evaluations"] == counts["codes"] and not counts["pending"]
