"""The cpu-worker's container confinement still lets the sandbox isolate: a process running as the non-root
uid 65534 with no capabilities, no_new_privs and the seccomp profile the compose file gives the cpu-worker
(deploy/seccomp/cpu-worker.json, compiled with libseccomp as runc does) still gets bubblewrap isolation and runs a
real candidate, while a call the profile denies fails with EPERM. A control run without the profile shows that
the denial comes from the profile.

What this cannot show without a container engine: Docker's AppArmor and /proc masking (the compose file turns
both off for the cpu-worker: `apparmor=unconfined`, `systempaths=unconfined`; docs/deploy.md says why).
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "deploy" / "seccomp" / "cpu-worker.json"
NOBODY = 65534
CANDIDATE = """from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector


def create_ansatz(num_qubits):
    theta = ParameterVector("t", num_qubits)
    qc = QuantumCircuit(num_qubits)
    for q in range(num_qubits):
        qc.ry(theta[q], q)
    for q in range(num_qubits - 1):
        qc.cx(q, q + 1)
    return qc
"""


def _others_can_run(path: str) -> bool:
    parts = Path(path).parts
    return all(os.stat(Path(*parts[:i])).st_mode & 0o001 for i in range(1, len(parts))) and \
        bool(os.stat(path).st_mode & 0o001)


def _python_for_nobody() -> str:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for path in (os.path.realpath(sys.executable), shutil.which(version), f"/usr/bin/{version}"):
        if path and os.path.exists(path) and _others_can_run(path):
            return path
    pytest.fail(f"no {version} that uid 65534 can execute: install the distribution's python3 package")


def run_confined(tmp_path: Path, *, profile: Path | None) -> dict:
    if os.geteuid() != 0:
        pytest.skip("needs root to start the worker under uid 65534 (run as root, as CI does)")
    if ctypes.util.find_library("seccomp") is None:
        pytest.fail("libseccomp is needed to compile the Docker-format profile (apt-get install libseccomp2)")
    python = _python_for_nobody()
    home = tmp_path / "home"
    home.mkdir(parents=True)
    os.chown(home, NOBODY, NOBODY)
    job = {"profile": str(profile) if profile else None, "python": python, "code": CANDIDATE,
           "site": [sysconfig.get_paths()["purelib"]]}
    proc = subprocess.run([python, "-I", str(ROOT / "tests" / "_container_profile_worker.py")],
                          input=json.dumps(job), capture_output=True, text=True, timeout=300, user=NOBODY,
                          group=NOBODY, extra_groups=[], cwd=home, env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
                          check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.integration
def test_the_sandbox_still_isolates_under_the_cpu_worker_seccomp_profile(tmp_path):
    confined = run_confined(tmp_path, profile=PROFILE)
    assert confined["uid"] == NOBODY and confined["profile"]["denied_rules"] >= 30
    assert confined["isolation"] == "bwrap", confined["summary"]
    assert confined["candidate"] == {"status": "ok", "error": None, "isolation": "bwrap", "sizes": [4]}, confined
    assert confined["keyctl"] == {"rc": -1, "errno": "EPERM"}, "the profile must deny keyctl"

    control = run_confined(tmp_path / "control", profile=None)
    assert control["keyctl"]["rc"] >= 0 or control["keyctl"]["errno"] != "EPERM", \
        "without the profile keyctl is not denied: the EPERM above came from the profile"
