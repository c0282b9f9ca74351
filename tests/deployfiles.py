"""Readers of the deployment files shared by the deploy tests: the compose file, the Kubernetes manifests and the
Dockerfiles, parsed (never run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
K8S = DEPLOY / "k8s"
SECCOMP = DEPLOY / "seccomp" / "cpu-worker.json"

# compose service -> (Kubernetes kind, name) of the workload that runs the same container
WORKLOADS = {
    "redis": ("StatefulSet", "redis"),
    "postgres": ("StatefulSet", "postgres"),
    "migrate": ("Job", "qmind-migrate"),
    "cpu-worker": ("Deployment", "cpu-worker"),
    "gpu-worker": ("Deployment", "gpu-worker"),
    "flower": ("Deployment", "flower"),
    "discover": ("CronJob", "qmind-discover"),
}
# the services that run quantum-mind's own images
QMIND_SERVICES = ("migrate", "cpu-worker", "gpu-worker", "flower", "discover")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict:
    return compose()["services"]


def k8s_docs() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def k8s(kind: str, name: str) -> dict:
    for _, doc in k8s_docs():
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"deploy/k8s has no {kind} named {name}")


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def container(kind: str, name: str) -> dict:
    return pod_spec(k8s(kind, name))["containers"][0]


def env_of(c: dict) -> dict:
    return {e["name"]: e for e in c.get("env", [])}


def configmap() -> dict:
    return k8s("ConfigMap", "qmind-config")["data"]


# ---- compose variables ---------------------------------------------------------------------------------------------
_COMPOSE_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def compose_default(text: str) -> str:
    """``text`` as compose renders it with nothing set: ``${X:-d}`` -> d; required ``${X:?...}`` and plain ``${X}``
    become ``$(X)``, the Kubernetes spelling of the same variable."""
    def sub(m: re.Match) -> str:
        return m["arg"] if m["op"] in (":-", "-") else f"$({m['name']})"
    return _COMPOSE_VAR.sub(sub, str(text))


def compose_image(service: str) -> str:
    return compose_default(services()[service]["image"])


# ---- Dockerfiles ---------------------------------------------------------------------------------------------------
def dockerfile_for(service: str) -> Path | None:
    image = compose_image(service)
    m = re.match(r"^quantum-mind/([a-z-]+):", image)
    return DEPLOY / f"Dockerfile.{m[1]}" if m else None


def dockerfile_instruction(path: Path, name: str) -> str | None:
    """The last ``name`` instruction of a Dockerfile (continuation lines joined), without the keyword."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    found = re.findall(rf"^{name}\s+(.+)$", text, re.MULTILINE)
    return found[-1].strip() if found else None


def image_entrypoint(service: str) -> list[str]:
    path = dockerfile_for(service)
    entry = dockerfile_instruction(path, "ENTRYPOINT") if path else None
    return json.loads(entry) if entry else []


def image_healthcheck(service: str) -> dict | None:
    """The Dockerfile's HEALTHCHECK as compose would show it: test (shell form), interval, timeout, ..."""
    path = dockerfile_for(service)
    line = dockerfile_instruction(path, "HEALTHCHECK") if path else None
    if not line or line == "NONE":
        return None
    opts = dict(re.findall(r"--([a-z-]+)=(\S+)", line))
    return {"test": ["CMD-SHELL", line.split(" CMD ", 1)[1].strip()], "interval": opts.get("interval"),
            "timeout": opts.get("timeout"), "retries": int(opts.get("retries", 3)),
            "start_period": opts.get("start-period", "0s")}


def image_user(service: str) -> str | None:
    path = dockerfile_for(service)
    return dockerfile_instruction(path, "USER") if path else None


def seconds(duration: str | None) -> int:
    """compose/Docker durations (``60s``, ``5m``, ``1m30s``) in seconds."""
    total = 0
    for value, unit in re.findall(r"(\d+)(h|m|s)", duration or "0s"):
        total += int(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total
