"""What the worker images install is complete: the files the Dockerfile COPYs are copied to an empty directory,
built into a wheel there (``pip install .`` in the image does the same), and the installed code, run from
elsewhere, migrates a fresh store and runs the sandbox's runner. Catches a Dockerfile that forgets a package or
a pyproject that forgets package data (migrations, molecule data, the sandbox runner)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile.cpu-worker"
IGNORED = {"__pycache__"}


def copy_like_the_dockerfile(dest: Path) -> list[str]:
    copied = []
    for line in DOCKERFILE.read_text().splitlines():
        m = re.match(r"^COPY\s+(.+)\s+(\S+)$", line)
        if not m:
            continue
        sources, target = m[1].split(), m[2]
        for src in sources:
            path = ROOT / src
            out = dest / target / path.name if target.endswith("/") or target == "." else dest / target
            if path.is_dir():
                shutil.copytree(path, out, ignore=shutil.ignore_patterns(*IGNORED, "*.pyc"))
            else:
                shutil.copy2(path, out)
            copied.append(src)
    return copied


def test_the_image_install_ships_code_migrations_and_data(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    copied = copy_like_the_dockerfile(src)
    assert {"pyproject.toml", "README.md", "db", "workers", "scheduler", "training"} <= set(copied), copied
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = wheels.glob("quantum_mind-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("db/migrations/env.py", "db/migrations/script.py.mako",
                   "db/migrations/versions/0001_initial_tables.py", "workers/evaluation/goals/data/h2.json",
                   "workers/evaluation/sandbox/runner.py", "workers/isolation_check.py", "scheduler/cli/cluster.py"):
        assert needed in names, f"{needed} is missing from the wheel the image installs"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "qmind = scheduler.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    upgrade = subprocess.run([sys.executable, "-m", "scheduler.cli", "db", "upgrade", "--url",
                              f"sqlite:///{elsewhere / 'store.db'}", "--json"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert upgrade.returncode == 0 and '"upgraded": true' in upgrade.stdout, upgrade.stderr[-3000:]
    code = "import workers.evaluation.sandbox as s, workers.app; print(s.__file__); print(s.isolation_status().mode)"
    probe = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.splitlines()[0].startswith(str(site)), "the installed copy must be the one imported"
