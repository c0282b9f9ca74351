"""Configuration of the candidate sandbox: one frozen dataclass, every field with a default and a one-line help.

Environment variables (read at the edge, ``workers/settings.py``): ``QMIND_SANDBOX_<FIELD>`` (upper case), e.g.
``QMIND_SANDBOX_WALL_SECONDS=10``, ``QMIND_SANDBOX_ISOLATION=bwrap``. Byte sizes accept suffixes (``512M``, ``2G``,
``1MiB``: ``parse_bytes``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..errors import SandboxError

GiB = 1 << 30
MiB = 1 << 20
KiB = 1 << 10
ISOLATION_MODES = ("auto", "bwrap", "rlimits")


def _f(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """Limits and isolation of one sandboxed candidate run. See docs/sandbox.md for the full table."""

    wall_seconds: float = _f(30.0, "wall-clock limit for the whole run (interpreter start included)")
    cpu_seconds: float | None = _f(None, "CPU-time limit per process (RLIMIT_CPU); None = wall_seconds")
    memory_bytes: int = _f(2 * GiB, "memory the candidate may add: per-process address space and tree-wide RSS")
    max_processes: int = _f(64, "processes and threads the sandbox uid may have (RLIMIT_NPROC)")
    max_output_bytes: int = _f(1 * MiB, "captured stdout + stderr; more stops the run as 'resource'")
    max_circuit_bytes: int = _f(4 * MiB, "largest serialised (QPY) circuit accepted per size")
    max_code_bytes: int = _f(256 * KiB, "largest candidate source accepted")
    max_disk_bytes: int = _f(64 * MiB, "private writable temp dir (tmpfs size under bwrap) and largest file")
    max_open_files: int = _f(256, "open file descriptors per process (RLIMIT_NOFILE)")
    isolation: str = _f("auto", "auto (bwrap when usable, else fallback), bwrap (required) or rlimits (fallback)")
    bwrap_path: str = _f("bwrap", "bubblewrap executable (name on PATH or absolute path)")
    python: str = _f("", "interpreter for the sandbox; empty = the one running this process")
    uid_base: int = _f(1_000_000_000, "first uid of the per-slot unprivileged uids used when the worker is root")
    uid_slots: int = _f(256, "how many sandbox uids (concurrent runs per host) exist above uid_base")
    extra_read_paths: tuple[str, ...] = _f((), "further read-only directories to expose and import from (after the interpreter's own)")

    def __post_init__(self) -> None:
        problems = []
        if not self.wall_seconds > 0:
            problems.append(f"wall_seconds must be > 0, got {self.wall_seconds!r}")
        if self.cpu_seconds is not None and not self.cpu_seconds > 0:
            problems.append(f"cpu_seconds must be > 0 or None, got {self.cpu_seconds!r}")
        for name in ("memory_bytes", "max_output_bytes", "max_circuit_bytes", "max_code_bytes", "max_disk_bytes"):
            if getattr(self, name) < 1024:
                problems.append(f"{name} must be at least 1024 bytes, got {getattr(self, name)!r}")
        if self.max_processes < 2:
            problems.append(f"max_processes must be >= 2 (the interpreter needs one), got {self.max_processes}")
        if self.max_open_files < 16:
            problems.append(f"max_open_files must be >= 16, got {self.max_open_files}")
        if self.isolation not in ISOLATION_MODES:
            problems.append(f"isolation must be one of {', '.join(ISOLATION_MODES)}, got {self.isolation!r}")
        if self.uid_base < 1000 or self.uid_slots < 1 or self.uid_base + self.uid_slots >= 2**32 - 2:
            problems.append(f"uid_base/uid_slots out of range: {self.uid_base}/{self.uid_slots}")
        if problems:
            raise SandboxError("invalid sandbox configuration: " + "; ".join(problems))

    @property
    def cpu_limit(self) -> float:
        """The CPU-time limit in effect."""
        return self.wall_seconds if self.cpu_seconds is None else self.cpu_seconds

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> one-line help."""
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """``'2G'``, ``'512MiB'``, ``'1048576'`` -> bytes (binary multiples)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"expected a byte size such as 2G, 512M or 1048576, got {text!r}")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))
