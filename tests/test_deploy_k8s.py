"""The Kubernetes manifests keep the security model (Redis password and AOF, Flower never public, GPU limits, the
cpu-worker's sandbox settings, network policies) and validate against the Kubernetes schemas
(``kubernetes-validate``, offline; no cluster runs here). That they say what the compose stack test proved:
tests/test_deploy_parity.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deployfiles import K8S, configmap, k8s, k8s_docs, pod_spec
from deployfiles import container as _container
from deployfiles import env_of as _env


def test_the_manifests_validate_against_the_kubernetes_schemas():
    exe = Path(sys.executable).with_name("kubernetes-validate")
    if not exe.exists():
        pytest.fail("kubernetes-validate is needed (pip install -e '.[dev]'): it checks deploy/k8s offline")
    files = [str(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"]
    proc = subprocess.run([str(exe), "--strict", "--quiet", *files], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_kustomization_lists_every_manifest_but_the_secret_template():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == present
    for _, doc in k8s_docs():
        if doc["kind"] == "Secret":
            values = {**doc.get("stringData", {}), **doc.get("data", {})}
            assert all(str(v).startswith("REPLACE_WITH_") for v in values.values()), values


def test_k8s_redis_requires_a_password_from_the_secret_with_aof_and_noeviction():
    redis = _container("StatefulSet", "redis")
    args = " ".join(redis["args"])
    assert "--requirepass $(REDIS_PASSWORD)" in args
    assert "--appendonly yes" in args and "--maxmemory-policy noeviction" in args
    assert _env(redis)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "qmind-secrets"
    assert k8s("Service", "redis")["spec"]["type"] == "ClusterIP"


def test_k8s_workers_reach_redis_and_postgres_with_passwords_from_the_secret():
    for kind, name in (("Deployment", "cpu-worker"), ("Deployment", "gpu-worker"), ("CronJob", "qmind-discover")):
        env = _env(_container(kind, name))
        assert env["QMIND_BROKER_URL"]["value"].startswith("redis://:$(REDIS_PASSWORD)@"), name
        assert ":$(POSTGRES_PASSWORD)@" in env["QMIND_DATABASE_URL"]["value"], name
        for secret in ("REDIS_PASSWORD", "POSTGRES_PASSWORD"):
            assert env[secret]["valueFrom"]["secretKeyRef"]["name"] == "qmind-secrets", (name, secret)
    assert _env(_container("StatefulSet", "postgres"))["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]


def test_k8s_flower_requires_basic_auth_and_is_never_exposed_publicly():
    flower = _container("Deployment", "flower")
    assert flower["command"][-6:-4] == ["qmind", "flower"]
    env = _env(flower)
    for key in ("QMIND_FLOWER_USER", "QMIND_FLOWER_PASSWORD"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "qmind-secrets", "key": key}
    assert k8s("Service", "flower")["spec"]["type"] == "ClusterIP"
    for _, doc in k8s_docs():
        assert doc["kind"] not in ("Ingress", "Route", "Gateway"), "nothing is exposed publicly"
        if doc["kind"] == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", doc["metadata"]["name"]
            assert not doc["spec"].get("externalIPs")


def test_k8s_gpu_worker_requests_one_nvidia_gpu_and_mounts_models_read_only():
    gpu = _container("Deployment", "gpu-worker")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["command"][-4:] == ["qmind", "worker", "--queues", "gpu"]
    mounts = {m["mountPath"]: m for m in gpu["volumeMounts"]}
    assert mounts["/models"]["readOnly"] and mounts["/adapters"]["readOnly"]
    assert not any(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
                   for _, d in k8s_docs() if d["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")
                   and d["metadata"]["name"] != "gpu-worker" for c in pod_spec(d)["containers"])


def test_k8s_cpu_worker_has_the_sandbox_settings_and_nothing_more():
    doc = k8s("Deployment", "cpu-worker")
    pod, worker = pod_spec(doc), _container("Deployment", "cpu-worker")
    ctx = worker["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["readOnlyRootFilesystem"] is True and not ctx.get("privileged")
    assert ctx["procMount"] == "Unmasked" and pod["hostUsers"] is False, "a fresh /proc needs a userns pod"
    assert ctx["seccompProfile"]["type"] in ("Unconfined", "Localhost")
    assert ctx["appArmorProfile"]["type"] in ("Unconfined", "Localhost")
    assert not pod.get("hostPID") and not pod.get("hostNetwork") and not pod.get("hostIPC")
    assert worker["command"][-4:] == ["qmind", "worker", "--queues", "cpu"]
    assert worker["resources"]["limits"]["cpu"] and doc["spec"]["replicas"] >= 1
    config = configmap()
    assert config["QMIND_ALLOW_INSECURE_SANDBOX"] == "0"
    assert config["QMIND_WORKER_CONCURRENCY"] == str(worker["resources"]["limits"]["cpu"])


def test_k8s_network_policies_let_only_the_workers_reach_redis_and_postgres():
    policies = [d for _, d in k8s_docs() if d["kind"] == "NetworkPolicy"]
    default = [p for p in policies if p["spec"]["podSelector"] == {} and "Ingress" in p["spec"]["policyTypes"]
               and not p["spec"].get("ingress")]
    assert default, "a default-deny ingress policy is needed"

    def ingress_labels(app: str, port: int) -> list[dict]:
        out = []
        for p in policies:
            if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == app:
                for rule in p["spec"].get("ingress", []):
                    assert [x["port"] for x in rule["ports"]] == [port]
                    out += [f["podSelector"]["matchLabels"] for f in rule["from"]]
        return out

    for app, port, label in (("redis", 6379, "qmind.io/redis-client"), ("postgres", 5432, "qmind.io/db-client")):
        sources = ingress_labels(app, port)
        assert sources == [{label: "true"}], (app, sources)
        clients = {d["metadata"]["name"] for _, d in k8s_docs() if d["kind"] in ("Deployment", "Job", "CronJob")
                   and (d["spec"].get("jobTemplate", {}).get("spec", d["spec"])["template"]["metadata"]["labels"]
                        .get(label) == "true")}
        assert clients and clients <= {"cpu-worker", "gpu-worker", "flower", "qmind-migrate", "qmind-discover"}, \
            clients
