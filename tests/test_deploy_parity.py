"""The Kubernetes manifests run what the compose stack test (tests/test_deploy_stack.py) proved: the same images,
command lines, settings, security context, health checks, mounts and grace periods. Both files are read and
compared service by service, so a change to one that is not made to the other fails here. The few differences
that must exist are listed in ALLOWED with the reason, and checked for what they must be instead."""

from __future__ import annotations

import re
import shlex

import pytest
from deployfiles import (
    QMIND_SERVICES,
    WORKLOADS,
    compose_default,
    compose_image,
    configmap,
    env_of,
    image_entrypoint,
    image_healthcheck,
    image_user,
    k8s,
    pod_spec,
    seconds,
    services,
)

# (service, what) -> why Kubernetes says something else (each is checked below for what it must be instead)
ALLOWED = {
    ("redis", "--maxmemory"): "a pod has a memory limit, so Redis is capped below it (compose: REDIS_MAXMEMORY, 0)",
    ("cpu-worker", "QMIND_WORKER_CONCURRENCY"): "0 means the node's cores in a pod: it is set to the CPU limit",
}


def workload(service: str) -> tuple[dict, dict]:
    """(pod spec, main container) of the Kubernetes workload that runs compose's ``service``."""
    pod = pod_spec(k8s(*WORKLOADS[service]))
    return pod, pod["containers"][0]


def compose_argv(service: str) -> list[str]:
    """What compose runs: the service's entrypoint (else the image's) followed by its command."""
    svc = services()[service]
    entry = svc.get("entrypoint", image_entrypoint(service) if "entrypoint" not in svc else [])
    command = svc.get("command", [])
    words = shlex.split(compose_default(command)) if isinstance(command, str) else [compose_default(w) for w in command]
    return [*entry, *words]


def k8s_argv(c: dict) -> list[str]:
    return [*c.get("command", []), *c.get("args", [])]


def k8s_env_keys(c: dict) -> set[str]:
    keys = set(env_of(c))
    if any(src.get("configMapRef", {}).get("name") == "qmind-config" for src in c.get("envFrom", [])):
        keys |= set(configmap())
    return keys


def k8s_env_value(c: dict, key: str) -> str | None:
    """The value a container sees, with $(VAR) references to the ConfigMap resolved (Secrets stay $(VAR))."""
    entry = env_of(c).get(key)
    if entry and "secretKeyRef" in entry.get("valueFrom", {}):
        return f"$({entry['valueFrom']['secretKeyRef']['key']})"
    value = entry.get("value") if entry else configmap().get(key)
    if value is None:
        return None
    return re.sub(r"\$\(([A-Z0-9_]+)\)", lambda m: configmap().get(m[1], m[0]), value)


# ---- images and command lines ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("service", sorted(WORKLOADS))
def test_each_workload_runs_compose_s_image(service):
    pod, main = workload(service)
    assert main["image"] == compose_image(service), service
    for init in pod.get("initContainers", []):
        assert init["image"] == compose_image(service), f"{service}: init container {init['name']}"


@pytest.mark.parametrize("service", sorted(WORKLOADS))
def test_each_workload_runs_compose_s_command_line(service):
    want, got = compose_argv(service), k8s_argv(workload(service)[1])
    if service == "redis":  # compare option by option: `--maxmemory` is capped in the pod (ALLOWED)
        want_opts, got_opts = dict(zip(want[1::2], want[2::2])), dict(zip(got[1::2], got[2::2]))
        assert want[0] == got[0] == "redis-server" and set(want_opts) == set(got_opts), (want, got)
        assert {k: v for k, v in want_opts.items() if k != "--maxmemory"} == \
               {k: v for k, v in got_opts.items() if k != "--maxmemory"}
        limit = workload("redis")[1]["resources"]["limits"]["memory"]
        assert _bytes(got_opts["--maxmemory"]) < _bytes(limit), "Redis must refuse writes before the pod is killed"
    else:
        assert got == want, f"{service}: Kubernetes runs {got}, compose {want}"


def _bytes(quantity: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(gb|mb|Gi|Mi|G|M)?", str(quantity))
    scale = {"gb": 1 << 30, "mb": 1 << 20, "Gi": 1 << 30, "Mi": 1 << 20, "G": 10**9, "M": 10**6, None: 1}
    return int(m[1]) * scale[m[2]]


# ---- settings ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("service", sorted(WORKLOADS))
def test_each_workload_gets_every_variable_compose_passes(service):
    env = services()[service].get("environment", {})
    missing = set(env) - k8s_env_keys(workload(service)[1])
    assert not missing, f"{service}: compose sets {sorted(missing)}, the pod does not"


def test_kubernetes_sets_no_qmind_variable_that_compose_does_not():
    in_compose = {k for s in services().values() for k in s.get("environment", {})}
    for service in QMIND_SERVICES:
        c = workload(service)[1]
        extra = {k for k in env_of(c) if k.startswith("QMIND_")} - set(services()[service].get("environment", {}))
        assert not extra, f"{service}: only the pod sets {sorted(extra)}"
    assert not {k for k in configmap() if k.startswith("QMIND_")} - in_compose, "ConfigMap keys compose never sets"


def test_literal_values_are_the_same_and_urls_point_at_the_same_services():
    for service in QMIND_SERVICES:
        c = workload(service)[1]
        for key, value in services()[service].get("environment", {}).items():
            if value is None or key in {k for (_, k) in ALLOWED}:
                continue
            assert k8s_env_value(c, key) == compose_default(value), (service, key)
    cpu = workload("cpu-worker")[1]
    assert k8s_env_value(cpu, "QMIND_WORKER_CONCURRENCY") == str(cpu["resources"]["limits"]["cpu"])


def test_the_configmap_leaves_every_setting_compose_passes_through_at_the_code_default():
    """compose passes a setting only when deploy/.env sets it (else the code's default applies); the ConfigMap
    writes them out, so each value there must be that default."""
    from db.config import StoreConfig
    from workers.config import QueueConfig
    from workers.settings import knob_names, scoring_settings

    passed_through = {k for s in services().values() for k, v in s.get("environment", {}).items() if v is None}
    data = {k: v for k, v in configmap().items() if k in passed_through}
    assert len(data) >= 20, "the ConfigMap should show the settings compose passes through"
    knobs = knob_names()
    for key, value in data.items():
        field = key.removeprefix("QMIND_").lower()
        if key in knobs:  # the scoring tree (workers/settings.py): sandbox, BP, VQE, engine
            assert scoring_settings({key: value}) == scoring_settings({}), f"{key}={value!r} is not the default"
        else:
            cls = QueueConfig if field in QueueConfig.model_fields else StoreConfig
            got = getattr(cls(**{field: value}), field)
            assert got == cls.model_fields[field].default, f"{key}={value!r} is not the default"
    assert {k for k in knobs if k.startswith("QMIND_SANDBOX_")} & set(data), "the sandbox's settings belong here too"


# ---- security context -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("service", QMIND_SERVICES)
def test_each_qmind_container_has_compose_s_security_settings(service):
    svc, (pod, c) = services()[service], workload(service)
    ctx, pod_ctx = c.get("securityContext", {}), pod.get("securityContext", {})
    opts = {o.split("=", 1)[0].split(":", 1)[0]: o for o in svc.get("security_opt", [])}
    assert (ctx.get("readOnlyRootFilesystem") is True) == (svc.get("read_only") is True), service
    assert ctx.get("capabilities", {}).get("drop") == svc.get("cap_drop"), service
    assert ctx.get("capabilities", {}).get("add") == svc.get("cap_add"), service
    assert (ctx.get("allowPrivilegeEscalation") is False) == ("no-new-privileges" in opts), service
    user = image_user(service).split(":")
    assert (pod_ctx["runAsUser"], pod_ctx["runAsGroup"]) == (int(user[0]), int(user[1])), service
    assert pod_ctx.get("runAsNonRoot") is True and not ctx.get("privileged")

    seccomp = ctx.get("seccompProfile") or pod_ctx.get("seccompProfile")
    if "seccomp" in opts:  # the shipped profile, installed on the nodes under the same file name
        profile = compose_default(opts["seccomp"].split("=", 1)[1]).rsplit("/", 1)[-1]
        assert seccomp["type"] == "Localhost" and seccomp["localhostProfile"].endswith("/" + profile), seccomp
    else:
        assert seccomp == {"type": "RuntimeDefault"}, service
    apparmor = (ctx.get("appArmorProfile") or pod_ctx.get("appArmorProfile") or {}).get("type", "RuntimeDefault")
    assert apparmor == ("Unconfined" if opts.get("apparmor") == "apparmor=unconfined" else "RuntimeDefault"), service
    unmasked = opts.get("systempaths") == "systempaths=unconfined"
    assert (ctx.get("procMount") == "Unmasked") == unmasked, service
    if unmasked:
        assert pod.get("hostUsers") is False, "an unmasked /proc is allowed only in a user-namespaced pod"


def test_only_the_cpu_worker_relaxes_anything():
    relaxed = [s for s in QMIND_SERVICES if set(services()[s].get("security_opt", [])) - {"no-new-privileges:true"}]
    assert relaxed == ["cpu-worker"]


# ---- health checks ----------------------------------------------------------------------------------------------------
def _healthcheck(service: str) -> dict | None:
    check = services()[service].get("healthcheck")
    if check is None:
        check = image_healthcheck(service)
    return None if not check or check.get("disable") else check


def _probe_command(probe: dict) -> list[str]:
    if "httpGet" in probe:
        return ["GET", str(probe["httpGet"]["port"]), probe["httpGet"]["path"]]
    command = probe["exec"]["command"]
    return ["CMD-SHELL", command[2]] if command[:2] == ["sh", "-c"] else ["CMD", *command]


def _compose_command(test: list[str]) -> list[str]:
    if test[0] == "CMD" and test[1:3] == ["python", "-c"] and "urlopen(" in test[3]:
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)'", test[3])
        return ["GET", url[1], url[2]]
    if test[0] == "CMD-SHELL":
        return ["CMD-SHELL", re.sub(r"\s*\|\|\s*exit 1$", "", test[1]).replace("$$", "$")]
    return test


@pytest.mark.parametrize("service", sorted(WORKLOADS))
def test_each_health_check_is_the_same_probe(service):
    check, (_, c) = _healthcheck(service), workload(service)
    probes = {k: c[k] for k in ("livenessProbe", "readinessProbe", "startupProbe") if k in c}
    if check is None:
        assert not probes, f"{service}: compose checks nothing, the pod probes {sorted(probes)}"
        return
    assert probes, f"{service}: compose has a health check, the pod no probe"
    ports = {p["name"]: str(p["containerPort"]) for p in c.get("ports", [])}
    for kind, probe in probes.items():
        got = _probe_command(probe)
        got = [got[0], ports.get(got[1], got[1]), *got[2:]] if got[0] == "GET" else got
        assert got == _compose_command(check["test"]), f"{service} {kind}"


@pytest.mark.parametrize("service", ["cpu-worker", "gpu-worker"])
def test_a_worker_s_liveness_probe_has_the_image_health_check_s_timing(service):
    """Docker marks a worker unhealthy after `retries` failed pings; Kubernetes restarts it after as many."""
    check, probe = _healthcheck(service), workload(service)[1]["livenessProbe"]
    assert probe["periodSeconds"] == seconds(check["interval"])
    assert probe["timeoutSeconds"] == seconds(check["timeout"])
    assert probe["failureThreshold"] == check["retries"]
    assert probe["initialDelaySeconds"] == seconds(check["start_period"])


# ---- mounts, grace periods, resources ---------------------------------------------------------------------------------
@pytest.mark.parametrize("service", QMIND_SERVICES)
def test_each_container_writes_to_the_same_places_with_the_same_sizes(service):
    svc, (pod, c) = services()[service], workload(service)
    want = {compose_default(v).split(":")[1]: v for v in svc.get("volumes", [])}
    want |= {t.split(":")[0]: t for t in svc.get("tmpfs", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    got = set(mounts) - ({"/dev/shm"} if svc.get("shm_size") else set())
    assert got == set(want), f"{service}: compose mounts {sorted(want)}, the pod {sorted(got)}"
    for path, spec in want.items():
        ro = spec.endswith(":ro")
        assert bool(mounts[path].get("readOnly")) == ro, (service, path)
        size = re.search(r"size=(\d+)m", spec)
        if size:  # a compose tmpfs: memory-backed and the same size
            empty = volumes[mounts[path]["name"]]["emptyDir"]
            assert empty == {"medium": "Memory", "sizeLimit": f"{size[1]}Mi"}, (service, path)
    if svc.get("shm_size"):
        shm = volumes[mounts["/dev/shm"]["name"]]["emptyDir"]
        assert shm["medium"] == "Memory" and _bytes(shm["sizeLimit"]) == _bytes(compose_default(svc["shm_size"]))


@pytest.mark.parametrize("service", ["cpu-worker", "gpu-worker"])
def test_workers_get_the_same_time_to_finish_their_tasks_on_shutdown(service):
    grace = seconds(services()[service]["stop_grace_period"])
    assert workload(service)[0]["terminationGracePeriodSeconds"] == grace


def test_every_pod_has_resource_limits_and_the_cpu_worker_fits_its_sandboxes():
    from workers.settings import sandbox_settings

    for service in WORKLOADS:
        pod, _ = workload(service)
        for c in pod["containers"] + pod.get("initContainers", []):
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), (service, c["name"])
    cpu = workload("cpu-worker")[1]
    processes = int(k8s_env_value(cpu, "QMIND_WORKER_CONCURRENCY"))
    sandbox = sandbox_settings({k: v for k, v in configmap().items() if k.startswith("QMIND_SANDBOX_")})
    limit = _bytes(cpu["resources"]["limits"]["memory"])
    assert limit >= processes * sandbox.memory_bytes + (2 << 30), "each pool process may run a full sandbox"
    gpus = services()["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]["count"]
    assert workload("gpu-worker")[1]["resources"]["limits"]["nvidia.com/gpu"] == gpus
