"""The sandbox used by an evaluating process that is NOT root (the usual deployment): bubblewrap then runs in a
user namespace, and the fallback runs the candidate under the worker's own uid, where only seccomp, Landlock and
rlimits stand between them. A worker process under uid 65534 runs the hostile candidates; this (root) test process
checks the host afterwards."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from pathlib import Path

import pytest
from _sandbox_util import processes_named

NOBODY = 65534
HERE = Path(__file__).resolve().parent
MODES = ("bwrap", "rlimits")


def _interpreter_for_nobody() -> str | None:
    """A Python of this very version that uid 65534 can execute (this one may live under /root)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for path in (os.path.realpath(sys.executable), shutil.which(version), f"/usr/bin/{version}"):
        if path and os.path.exists(path) and _others_can_run(path):
            return path
    return None


def _others_can_run(path: str) -> bool:
    parts = Path(path).parts
    for i in range(1, len(parts)):
        if not os.stat(Path(*parts[:i])).st_mode & 0o001:
            return False
    return bool(os.stat(path).st_mode & 0o001)


@pytest.fixture(scope="module")
def unprivileged_run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root to start a worker under another uid (as a non-root user, run the whole suite)")
    python = _interpreter_for_nobody()
    if python is None:
        pytest.fail(f"no python{sys.version_info.major}.{sys.version_info.minor} executable by uid 65534; "
                    "install the distribution's python3 package")
    site = sysconfig.get_paths()["purelib"]
    home = tmp_path_factory.mktemp("nobody-home")
    os.chown(home, NOBODY, NOBODY)
    os.chmod(home, 0o700)
    tag = uuid.uuid4().hex[:10]
    targets = [f"/tmp/pwned-{tag}", str(home / f"pwned-{tag}")]
    markers = {}
    jobs = []
    for mode in MODES:
        markers[mode] = {name: "qm" + uuid.uuid4().hex[:12] for name in ("setsid", "forks")}
        jobs += [
            {"mode": mode, "program": "kill_parent", "subs": {"test_pid": "SELF"}, "config": {}},
            {"mode": mode, "program": "read_environment", "subs": {"test_pid": "SELF"}, "config": {}},
            {"mode": mode, "program": "write_outside", "subs": {"host_paths": targets, "marker": tag},
             "config": {}},
            {"mode": mode, "program": "setsid_daemon", "subs": {"marker": markers[mode]["setsid"]}, "config": {}},
            {"mode": mode, "program": "fork_counter", "subs": {"marker": markers[mode]["forks"]},
             "config": {"max_processes": 12}},
            {"mode": mode, "program": "network", "subs": {"redis_key": f"never-{tag}"}, "config": {}},
            {"mode": mode, "program": "ctypes_syscalls", "subs": {}, "config": {}},
            {"mode": mode, "program": "infinite_loop", "subs": {}, "config": {"wall_seconds": 4}},
            {"mode": mode, "program": "litter", "subs": {}, "config": {}},
            {"mode": mode, "program": "inode_flood", "subs": {"seconds": 8}, "config": {}},
            {"mode": mode, "program": "socket_memory", "subs": {"budget": 400 << 20},
             "config": {"memory_bytes": 512 << 20}},
        ]
    secret = "s3cret-" + uuid.uuid4().hex
    before = _nobody_workdirs()
    request = {"python": python, "site": [site], "secret": secret, "jobs": jobs}
    proc = subprocess.run([python, "-I", str(HERE / "_unprivileged_worker.py")], input=json.dumps(request),
                          capture_output=True, text=True, timeout=600, user=NOBODY, group=NOBODY,
                          extra_groups=[], cwd=str(home), env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    yield {"out": out, "targets": targets, "markers": markers, "secret": secret, "home": home,
           "new_workdirs": _nobody_workdirs() - before}
    for path in targets:
        if os.path.lexists(path):
            os.unlink(path)


def _nobody_workdirs() -> set[str]:
    return {p for p in glob.glob(os.path.join(tempfile.gettempdir(), "qmind-sandbox-*"))
            if os.lstat(p).st_uid == NOBODY}


def results(run, mode, program):
    [found] = [r for r in run["out"]["results"] if r["job"]["mode"] == mode and r["job"]["program"] == program]
    assert found["isolation"] == mode
    return found


def test_the_unprivileged_worker_gets_bubblewrap_through_a_user_namespace(unprivileged_run):
    assert unprivileged_run["out"]["uid"] == NOBODY
    assert unprivileged_run["out"]["status"] == "bwrap"


@pytest.mark.parametrize("mode", MODES)
def test_a_same_uid_candidate_cannot_signal_its_worker(unprivileged_run, mode):
    r = results(unprivileged_run, mode, "kill_parent")
    assert r["status"] in ("ok", "error")
    assert "SENT test process KILL" not in r["stdout"] and "SENT ppid KILL" not in r["stdout"]
    # the worker survived: it went on to run every later job and printed its report


@pytest.mark.parametrize("mode", MODES)
def test_a_same_uid_candidate_cannot_read_its_workers_environment(unprivileged_run, mode):
    r = results(unprivileged_run, mode, "read_environment")
    assert r["status"] == "ok", r["error"]
    assert unprivileged_run["secret"] not in r["stdout"] + r["stderr"]
    assert f"DENIED {unprivileged_run['out']['pid']} environ" in r["stdout"]


@pytest.mark.parametrize("mode", MODES)
def test_a_same_uid_candidate_cannot_write_where_its_worker_can(unprivileged_run, mode):
    r = results(unprivileged_run, mode, "write_outside")
    assert r["status"] == "ok", r["error"]
    assert "WROTE" not in r["stdout"]
    assert [p for p in unprivileged_run["targets"] if os.path.lexists(p)] == []


@pytest.mark.parametrize("mode", MODES)
def test_daemons_and_forks_of_a_same_uid_candidate_are_gone_afterwards(unprivileged_run, mode):
    assert results(unprivileged_run, mode, "setsid_daemon")["status"] == "ok"
    forks = results(unprivileged_run, mode, "fork_counter")
    assert forks["status"] == "ok" and "BlockingIOError" in forks["stdout"]
    for name in unprivileged_run["markers"][mode].values():
        assert processes_named(name) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_same_uid_candidate_has_no_network_and_no_dangerous_system_calls(unprivileged_run, mode):
    net = results(unprivileged_run, mode, "network")
    assert "CONNECTED" not in net["stdout"] and net["stdout"].count("FAILED") == 8
    calls = results(unprivileged_run, mode, "ctypes_syscalls")["stdout"]
    assert calls.count("CALL") == 16 and all(line.split()[2] == "-1" for line in calls.splitlines()
                                             if line.startswith("CALL"))


@pytest.mark.parametrize("mode", MODES)
def test_an_unprivileged_run_still_times_out(unprivileged_run, mode):
    r = results(unprivileged_run, mode, "infinite_loop")
    assert r["status"] == "timeout" and r["wall"] < 8


@pytest.mark.parametrize("mode", MODES)
def test_an_unprivileged_run_counts_inodes_and_has_no_socket_buffers(unprivileged_run, mode):
    flood = results(unprivileged_run, mode, "inode_flood")
    assert flood["status"] == "resource" and "files" in flood["error"], flood
    sockets = results(unprivileged_run, mode, "socket_memory")
    assert sockets["stdout"].count("REFUSED PermissionError QUEUED 0 PAIRS 0") == 3, sockets


def test_the_fallback_directory_is_removed_even_when_the_candidate_locked_it(unprivileged_run):
    assert results(unprivileged_run, "rlimits", "litter")["status"] == "ok"
    assert unprivileged_run["new_workdirs"] == set()
