"""Helpers shared by the sandbox tests (not a test module)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from workers.evaluation.sandbox import SandboxConfig

HOSTILE = Path(__file__).with_name("hostile")
MODES = ("bwrap", "rlimits")


def marker() -> str:
    """A unique process name (<= 15 bytes, the kernel's comm limit) for finding survivors on the host."""
    return "qm" + uuid.uuid4().hex[:12]


def hostile(name: str, **substitutions: object) -> str:
    """The source of tests/hostile/<name>.py with __TOKEN__ placeholders filled in."""
    code = (HOSTILE / f"{name}.py").read_text()
    for key, value in substitutions.items():
        code = code.replace(f"__{key.upper()}__", str(value))
    for token in ("__MARKER__", "__HOST_PATHS__", "__TEST_PID__", "__REDIS_KEY__"):
        assert token not in code, f"{name}.py needs {token} filled in"
    return code


def config(mode: str, **overrides: object) -> SandboxConfig:
    """A sandbox configuration for tests: the given isolation mode, shorter limits where a test says so."""
    values = {"isolation": mode, "wall_seconds": 20.0}
    values.update(overrides)
    return SandboxConfig(**values)


def processes_named(name: str) -> list[int]:
    """Host pids whose /proc/<pid>/comm is ``name`` (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if comm == name and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def sandbox_uid_processes(config: SandboxConfig) -> list[int]:
    """Host pids running under any of the sandbox slot uids."""
    low, high = config.uid_base, config.uid_base + config.uid_slots
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("Uid:"):
                    if low <= int(line.split()[1]) < high:
                        found.append(int(entry))
                    break
        except OSError:
            continue
    return found
