"""Options of the optional hardware stage, carried by a goal (``hardware:`` in a goal file, ``--hardware`` per run).

A goal with ``hardware`` set asks the cascade to also transpile each valid candidate to a fake IBM device (a
calibration snapshot that ships offline with qiskit-ibm-runtime) and estimate its energy under that device's noise
model with a fixed shot budget (``workers/evaluation/hardware.py``). The options are part of the goal's spec and
hash, so a hardware-scored goal is stored as its own goal and never mixed with the noiseless one.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..errors import GoalError

DEFAULT_BACKEND = "fake_sherbrooke"
"""IBM Sherbrooke: 127-qubit Eagle r3, heavy-hex coupling map, basis ecr/rz/sx/x (snapshot in qiskit-ibm-runtime)."""
_BACKEND_RE = re.compile(r"^fake_[a-z0-9_]{2,40}$")


@dataclasses.dataclass(frozen=True)
class HardwareOptions:
    """What the hardware stage does for a goal."""

    backend: str = DEFAULT_BACKEND
    """Fake backend of ``qiskit_ibm_runtime.fake_provider`` by its name (``fake_sherbrooke``, ``fake_torino``...)."""
    shots: int = 4000
    """Total shot budget of the noisy energy, split evenly over the Hamiltonian's qubit-wise commuting groups."""
    optimization_level: int = 1
    """Qiskit preset pass manager level of the (seeded) transpile."""
    max_seconds: float = 60.0
    """Wall-clock budget of the noisy simulation; past it the noisy energy is 'not measured' (never partial)."""
    max_active_qubits: int = 16
    """Physical qubits (after routing) beyond which the noisy energy is not simulated (density-matrix cost)."""
    reward: bool = False
    """Let the shaped reward use the noisy energy (a ``hardware`` component); off by default."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_LIMITS = {"shots": (100, 1_000_000), "optimization_level": (0, 3), "max_seconds": (1.0, 3600.0),
           "max_active_qubits": (2, 24)}


def _number(key: str, value: Any, where: str):
    lo, hi = _LIMITS[key]
    want = float if isinstance(lo, float) else int
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and (want is float or isinstance(value, int))
    if not ok or not lo <= value <= hi:
        raise GoalError(f"{where}: hardware.{key} must be {'a number' if want is float else 'an integer'} "
                        f"between {lo:g} and {hi:g}, got {value!r}")
    return want(value)


def hardware_options(raw: Any, *, where: str = "goal") -> HardwareOptions | None:
    """Validate a goal's ``hardware`` field: ``true``/``false``/``null`` or a mapping of HardwareOptions fields."""
    if raw is None or raw is False:
        return None
    if raw is True:
        return HardwareOptions()
    if isinstance(raw, HardwareOptions):
        return raw
    if not isinstance(raw, dict):
        raise GoalError(f"{where}: field 'hardware' must be true, false or a mapping such as "
                        f"{{backend: {DEFAULT_BACKEND}, shots: 4000}}, got {raw!r}")
    fields = {f.name for f in dataclasses.fields(HardwareOptions)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise GoalError(f"{where}: unknown hardware option(s) {unknown}; valid: {sorted(fields)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "backend":
            if not isinstance(value, str) or not _BACKEND_RE.match(value):
                raise GoalError(f"{where}: hardware.backend must name a fake backend such as '{DEFAULT_BACKEND}', "
                                f"got {value!r}")
            values[key] = value
        elif key == "reward":
            if not isinstance(value, bool):
                raise GoalError(f"{where}: hardware.reward must be true or false, got {value!r}")
            values[key] = value
        else:
            values[key] = _number(key, value, where)
    return HardwareOptions(**values)
