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


# ---- the GPU image (built by `make images GPU=1`; it cannot run without an NVIDIA GPU) ----------------------------
GPU_DOCKERFILE = ROOT / "deploy" / "Dockerfile.gpu-worker"
OVERLAY = ROOT / "deploy" / "constraints-gpu.txt"


def _pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            key = re.sub(r"[-_.]+", "-", name.lower())
            assert key not in out, f"{name} is pinned twice"
            out[key] = version
    return out


def test_the_gpu_constraints_are_make_installs_with_only_vllms_pins_replaced(tmp_path):
    merged = subprocess.run(["sh", str(ROOT / "deploy" / "merge-constraints.sh"), str(ROOT / "constraints.txt"),
                             str(OVERLAY)], capture_output=True, text=True, timeout=30, check=True).stdout
    base, overlay, image = _pins((ROOT / "constraints.txt").read_text()), _pins(OVERLAY.read_text()), _pins(merged)
    assert {k: v for k, v in image.items() if k not in overlay} == {k: v for k, v in base.items() if k not in overlay}
    assert {k: image[k] for k in overlay} == overlay, "the overlay's pins win"
    assert set(overlay) - set(base) == {"vllm", "torch"}, "every other replaced pin must exist in constraints.txt"
    assert any(base[k] != overlay[k] for k in set(overlay) & set(base)), "an overlay that changes nothing is noise"
    bad = subprocess.run(["sh", str(ROOT / "deploy" / "merge-constraints.sh"), str(tmp_path / "missing.txt"),
                          str(OVERLAY)], capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode != 0 and "usage" in bad.stderr, "a missing input must fail the build, not merge nothing"


def test_the_gpu_image_installs_the_gpu_extra_with_those_pins_and_smoke_tests_itself():
    text = GPU_DOCKERFILE.read_text()
    # public base by default (registry access), the debootstrap base through the build argument (make images GPU=1)
    assert re.search(r"^ARG BASE_IMAGE=nvidia/cuda:\S+-ubuntu24\.04$", text, re.MULTILINE)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.MULTILINE)
    run = re.sub(r"\\\n\s*", " ", text)
    step = next(line for line in run.splitlines() if "pip install" in line)
    assert "set -eux" in step, "every command of the install step must fail the build"
    assert "merge-constraints.sh constraints.txt deploy/constraints-gpu.txt > constraints-image.txt" in step
    assert 'pip install -c constraints-image.txt ".[gpu,train]"' in step
    assert "pip check" in step
    imports = re.search(r'python -c "import ([^;]+);', step)[1].replace(" ", "").split(",")
    assert {"torch", "transformers", "peft", "vllm", "workers.generation", "scheduler.cli"} <= set(imports)
    assert "qmind --help" in step
    extras = re.search(r"^gpu = \[(.+)\]$", (ROOT / "pyproject.toml").read_text(), re.MULTILINE)[1]
    assert '"vllm' in extras, "the gpu extra is what brings vLLM"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in ("deploy/constraints-gpu.txt", "deploy/merge-constraints.sh"):
        assert f"!{path}" in ignored, f"{path} must reach the build context"


def test_both_worker_images_ship_the_same_code():
    def copies(path: Path) -> set[str]:
        return set(re.findall(r"^COPY (\S+) \./\1$", path.read_text(), re.MULTILINE))
    assert copies(DOCKERFILE) == copies(GPU_DOCKERFILE) == {"db", "workers", "scheduler", "training"}
