"""The compose file and the Dockerfiles keep the security model: each test fails when a setting the model depends
on is missing (Redis password, AOF, noeviction, Flower credentials and binding, JSON-only tasks, no committed
secrets, GPU reservation, the sandbox's container settings). The compose file is also rendered with Debian's
``docker-compose`` (no Docker engine needed). The manifests: tests/test_deploy_k8s.py; that both say the same:
tests/test_deploy_parity.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deployfiles import COMPOSE, DEPLOY, ENV_EXAMPLE, ROOT, SECCOMP, compose, k8s_docs, pod_spec, services

SECRETS = ("REDIS_PASSWORD", "POSTGRES_PASSWORD", "QMIND_FLOWER_USER", "QMIND_FLOWER_PASSWORD")
DUMMY = {"REDIS_PASSWORD": "0a1b2c3d", "POSTGRES_PASSWORD": "4e5f6a7b", "QMIND_FLOWER_USER": "admin",
         "QMIND_FLOWER_PASSWORD": "8c9d0e1f"}


# ---- helpers ------------------------------------------------------------------------------------------------------
def env_file(tmp_path: Path, **overrides: str) -> Path:
    """deploy/.env.example with dummy secrets filled in (and ``overrides`` applied)."""
    values = {**DUMMY, **overrides}
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if key in values and not line.startswith("#") else line)
    path = tmp_path / "env"
    path.write_text("\n".join(lines) + "\n")
    return path


def docker_compose(*args: str, env: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is needed to validate deploy/docker-compose.yml: run scripts/system_deps.sh "
                    "(Debian package docker-compose; it parses without a Docker engine)")
    # v1 reads the seccomp profile relative to the working directory: run from deploy/, as docs/deploy.md says
    return subprocess.run([exe, "--env-file", str(env), *args], cwd=DEPLOY, capture_output=True, text=True,
                          timeout=120, check=False)


def rendered(tmp_path: Path, **overrides: str) -> dict:
    proc = docker_compose("--profile", "discover", "config", env=env_file(tmp_path, **overrides))
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


# ---- secrets scanner ----------------------------------------------------------------------------------------------
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\([A-Za-z0-9_]+\)|\$\$?[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"(?i)(?P<key>[a-z0-9_.-]*(?:password|passwd|secret|token|requirepass|api[_-]?key|auth)[a-z0-9_.-]*)"
                     r"[\"']?(?:\s*[:=]\s*|\s+)[\"']?(?P<value>[^\s\"',]*)")
_URL_CREDENTIALS = re.compile(r"://(?P<user>[^:/@\s]*):(?P<password>[^@\s/]+)@")
_SAFE = {"", "VAR", "PASSWORD", "***", "true", "false", "null"}


def secret_findings(text: str) -> list[str]:
    """Lines that look like a literal secret: ``password: hunter2``, ``redis://:hunter2@host``. Variable
    references (``${X}``, ``$(X)``, ``$X``) and ``REPLACE_WITH_...`` placeholders are not secrets."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("#"):
            continue
        plain = _VARIABLE.sub("VAR", line)
        for m in _URL_CREDENTIALS.finditer(plain):
            if m["password"] not in _SAFE:
                found.append(f"line {n}: credentials in a URL: {line.strip()}")
        for m in _ASSIGN.finditer(plain):
            value = m["value"]
            if value in _SAFE or value.startswith(("REPLACE_WITH_", "{", "[")):
                continue
            found.append(f"line {n}: {m['key']} = {value!r}: {line.strip()}")
    return found


def deploy_files() -> list[Path]:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()] + [ROOT / ".dockerignore"]
    return sorted(files)


def test_the_secret_scanner_catches_literal_passwords():
    assert secret_findings("REDIS_PASSWORD=hunter2")
    assert secret_findings("  POSTGRES_PASSWORD: s3cr3t-value")
    assert secret_findings("QMIND_BROKER_URL: redis://:hunter2@redis:6379/0")
    assert secret_findings("--requirepass hunter2")
    assert not secret_findings("REDIS_PASSWORD=")
    assert not secret_findings("QMIND_BROKER_URL: redis://:${REDIS_PASSWORD:?set it}@redis:6379/0")
    assert not secret_findings("  REDIS_PASSWORD: REPLACE_WITH_REDIS_PASSWORD")
    assert not secret_findings("value: redis://:$(REDIS_PASSWORD)@redis:6379/$(REDIS_DB)")


def test_no_deploy_file_commits_a_secret_value():
    problems = {str(p.relative_to(ROOT)): secret_findings(p.read_text()) for p in deploy_files()}
    assert not {k: v for k, v in problems.items() if v}, problems


def test_the_env_example_leaves_every_secret_empty():
    values = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                  if line and not line.startswith("#"))
    assert set(values) == set(SECRETS), "only the secrets are uncommented in .env.example"
    assert all(v == "" for v in values.values()), values


# ---- compose: validation and secrets required ---------------------------------------------------------------------
def test_the_compose_file_validates_with_docker_compose_config(tmp_path):
    proc = docker_compose("--profile", "discover", "config", "-q", env=env_file(tmp_path))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_refuses_to_start_without_each_secret(tmp_path, secret):
    proc = docker_compose("config", "-q", env=env_file(tmp_path, **{secret: ""}))
    assert proc.returncode != 0
    assert secret in proc.stderr, proc.stderr


def test_every_qmind_setting_is_documented_in_the_env_example_and_reaches_the_containers():

    from db.config import StoreConfig
    from workers.config import QueueConfig
    from workers.settings import knob_names

    text, compose_text = ENV_EXAMPLE.read_text(), COMPOSE.read_text()
    # composed by compose itself from the secrets (URLs), published by compose (Flower's address and port), or
    # SQLite-only (the deployment uses PostgreSQL)
    derived = {"QMIND_BROKER_URL", "QMIND_DATABASE_URL", "QMIND_FLOWER_ADDRESS", "QMIND_FLOWER_PORT",
               "QMIND_SQLITE_BUSY_TIMEOUT_S"}
    names = {f"QMIND_{f.upper()}" for f in (*QueueConfig.model_fields, *StoreConfig.model_fields)} - derived
    names |= {n for n, path in knob_names().items() if path.startswith("sandbox.")}
    names |= {"QMIND_BP_SAMPLES", "QMIND_VQE_RESTARTS", "QMIND_ENGINE"}
    missing = sorted(n for n in names if not re.search(rf"^#? ?{n}=", text, re.MULTILINE))
    assert not missing, f"settings missing from deploy/.env.example: {missing}"
    for line_no, line in enumerate(text.splitlines()):
        key = re.match(r"^#? ?([A-Z][A-Z0-9_]+)=", line)
        if key:
            previous = text.splitlines()[line_no - 1]  # its comment, or a setting of the same group
            assert previous.startswith("#") and not previous.startswith("# ----"), \
                f"{key[1]} has no comment above it"
            if key[1].startswith("QMIND_"):
                assert key[1] in compose_text, f"{key[1]} is documented but never passed to a container"


# ---- compose: Redis, PostgreSQL, Flower ---------------------------------------------------------------------------
def test_compose_redis_requires_a_password_and_keeps_tasks_with_aof_and_noeviction():
    redis = services()["redis"]
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    assert re.search(r"--requirepass \$\{REDIS_PASSWORD:\?", command), command
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "ports" not in redis, "Redis must not be published to the host network"
    assert "host" not in str(redis.get("network_mode", ""))


def test_compose_clients_authenticate_to_redis_and_postgres():
    env = compose()["x-qmind-env"]
    assert env["QMIND_BROKER_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert ":${POSTGRES_PASSWORD:?" in env["QMIND_DATABASE_URL"]
    assert services()["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "ports" not in services()["postgres"]


def test_compose_flower_requires_credentials_and_binds_to_localhost(tmp_path):
    flower = services()["flower"]
    for key in ("QMIND_FLOWER_USER", "QMIND_FLOWER_PASSWORD"):
        assert flower["environment"][key].startswith(f"${{{key}:?"), flower["environment"][key]
    assert flower["command"][:2] == ["qmind", "flower"], "Flower must start through `qmind flower` (basic auth)"
    assert all(str(p).startswith("${FLOWER_BIND_ADDRESS:-127.0.0.1}:") for p in flower["ports"]), flower["ports"]
    published = rendered(tmp_path)["services"]["flower"]["ports"]
    hosts = {p["host_ip"] if isinstance(p, dict) else str(p).split(":")[0] for p in published}
    assert hosts == {"127.0.0.1"}, published


def test_only_flower_publishes_a_port_and_the_backend_network_is_internal():
    spec = compose()
    assert {name for name, s in spec["services"].items() if s.get("ports")} == {"flower"}
    assert spec["networks"]["backend"].get("internal") is True
    for name, s in spec["services"].items():
        assert not s.get("privileged"), f"{name} is privileged"
        assert "docker.sock" not in str(s.get("volumes", "")), f"{name} mounts the Docker socket"
        assert s.get("network_mode") != "host", f"{name} uses the host network"


# ---- compose: workers ---------------------------------------------------------------------------------------------
def test_compose_cpu_worker_has_exactly_the_sandbox_settings_it_needs():
    cpu = services()["cpu-worker"]
    assert cpu["command"] == ["qmind", "worker", "--queues", "cpu"]
    assert "QMIND_WORKER_CONCURRENCY" in cpu["environment"]
    opts = cpu["security_opt"]
    assert "no-new-privileges:true" in opts
    assert "apparmor=unconfined" in opts and "systempaths=unconfined" in opts
    seccomp = [o for o in opts if o.startswith("seccomp")]
    assert seccomp and "unconfined" not in seccomp[0], "use the shipped seccomp profile, not seccomp=unconfined"
    assert cpu["cap_drop"] == ["ALL"] and not cpu.get("cap_add"), "bubblewrap runs unprivileged: no capabilities"
    assert cpu["read_only"] is True and not cpu.get("privileged")
    assert "QMIND_ALLOW_INSECURE_SANDBOX" in cpu["environment"]


def test_the_cpu_worker_seccomp_profile_allows_bubblewrap_and_denies_dangerous_calls():
    profile = json.loads(SECCOMP.read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ERRNO" for n in rule["names"]}
    assert {"bpf", "kexec_load", "init_module", "finit_module", "ptrace", "keyctl", "open_by_handle_at",
            "io_uring_setup", "perf_event_open", "setns"} <= denied
    assert not denied & {"unshare", "clone", "clone3", "mount", "umount2", "pivot_root", "chroot", "prctl",
                         "seccomp"}, "bubblewrap needs these"
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"} <= set(profile["architectures"]), \
        "the 32-bit ABI must be filtered too"


def test_compose_gpu_worker_reserves_an_nvidia_gpu_and_mounts_models_read_only():
    gpu = services()["gpu-worker"]
    assert gpu["command"] == ["qmind", "worker", "--queues", "gpu"]  # the solo pool is chosen by `qmind worker`
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), devices
    mounts = {v.rsplit(":", 2)[1]: v for v in gpu["volumes"]}
    assert mounts["/models"].endswith(":ro") and mounts["/adapters"].endswith(":ro"), mounts


def test_compose_runs_migrations_once_before_the_workers_and_the_discovery_loop_on_demand():
    s = services()
    assert s["migrate"]["command"] == ["qmind", "db", "upgrade"] and s["migrate"]["restart"] == "no"
    for name in ("cpu-worker", "gpu-worker", "discover"):
        assert s[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert s[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert s["discover"]["profiles"] == ["discover"]
    assert s["discover"]["entrypoint"][-2:] == ["qmind", "discover"]


# ---- JSON only ----------------------------------------------------------------------------------------------------
def test_tasks_are_json_only_in_every_worker_the_deploy_files_start():
    from celery import Celery

    from workers.app import configure
    from workers.config import QueueConfig

    conf = configure(Celery("probe"), QueueConfig(broker_url="redis://:x@127.0.0.1:1/0")).conf
    assert conf.task_serializer == "json" and conf.result_serializer == "json" and conf.event_serializer == "json"
    assert list(conf.accept_content) == ["json"] and list(conf.result_accept_content) == ["json"]
    # every worker the deploy files start goes through `qmind worker`, which configures the app above, and no
    # file switches a serializer on
    commands = [s.get("command") for s in services().values()]
    commands += [c.get("command") for _, d in k8s_docs() if d["kind"] in ("Deployment", "Job", "CronJob")
                 for c in pod_spec(d)["containers"]]
    workers = [c for c in commands if c and "worker" in c]
    assert workers and all("qmind" in c for c in workers), workers
    for path in deploy_files():
        text = path.read_text().lower()
        for word in ("pickle", "msgpack", "yaml serializer", "accept_content", "task_serializer"):
            assert word not in text, f"{path.relative_to(ROOT)} mentions {word}"


# ---- Dockerfiles --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Dockerfile.cpu-worker", "Dockerfile.gpu-worker"])
def test_worker_images_run_as_non_root_without_baked_secrets_and_with_a_ping_healthcheck(name):
    text = (DEPLOY / name).read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{name} must end as a non-root user"
    assert not re.search(r"^(ARG|ENV)\s+\S*(PASSWORD|SECRET|TOKEN|BROKER_URL|DATABASE_URL)", text, re.MULTILINE | re.IGNORECASE)
    assert not re.search(r"^COPY\s+.*\.env", text, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n?.*inspect ping", text, re.MULTILINE), f"{name} needs a celery ping healthcheck"
    assert re.search(r'pip install -c constraints(-image)?\.txt "?\.(\[[a-z,]+\])?"?', text), f"{name} must pip-install the project"


def test_the_cpu_image_has_bubblewrap_and_both_images_start_under_tini():
    cpu = (DEPLOY / "Dockerfile.cpu-worker").read_text()
    assert "bubblewrap" in cpu
    for name in ("Dockerfile.cpu-worker", "Dockerfile.gpu-worker"):
        text = (DEPLOY / name).read_text()
        assert re.search(r'^ENTRYPOINT \["tini", "--"\]$', text, re.MULTILINE), f"{name}: tini forwards signals"


def test_the_docker_build_context_excludes_env_files_databases_and_models():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", "**/.env", ".venv", ".git", "*.db", "models"} <= ignored, ignored


def test_the_deploy_docs_explain_every_setting():
    from db.config import StoreConfig
    from scheduler.cluster import ClusterConfig
    from workers.config import QueueConfig

    docs = (ROOT / "docs" / "deploy.md").read_text()
    names = {f"QMIND_{f.upper()}" for c in (QueueConfig, StoreConfig, ClusterConfig) for f in c.model_fields}
    assert not sorted(n for n in names if n not in docs), "docs/deploy.md lacks these settings"

