"""The scoring settings tree from the environment: read once, at the edge, and passed down.

The edges are a Celery task (``workers/tasks.py``), a CLI command (``scheduler/cli``) and a training pool
(``training/evaluate_pool.py``); everything they call (``workers.evaluation``) takes the tree
(``cascade.EvaluationConfig``) or its branches as arguments and never reads the environment. Called without
settings, a pure function uses the defaults.

One name per knob, derived from where the field sits in the tree:

========================  ===========================  ================================================
branch                    variable                     example
========================  ===========================  ================================================
``EvaluationConfig``      ``QMIND_<FIELD>``            ``QMIND_ENGINE=aer`` (BP check and VQE alike)
``.sandbox``              ``QMIND_SANDBOX_<FIELD>``    ``QMIND_SANDBOX_MEMORY_BYTES=2G``
``.trusted``              ``QMIND_TRUSTED_<FIELD>``    ``QMIND_TRUSTED_SCORE_SECONDS=900``
``.barren``               ``QMIND_BP_<FIELD>``         ``QMIND_BP_SAMPLES=200``
``.vqe``                  ``QMIND_VQE_<FIELD>``        ``QMIND_VQE_RESTARTS=4``
========================  ===========================  ================================================

Old names keep working for one release with a ``DeprecationWarning`` (and a log line) naming the new one
(``DEPRECATED``). Byte sizes (``*_BYTES``) accept suffixes (``512M``, ``2G``); booleans accept 1/0, true/false,
yes/no, on/off; ``*_PATHS`` are ``os.pathsep``-separated; ``QMIND_SANDBOX_CPU_SECONDS=none`` means "= wall time".
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
import typing
import warnings
from collections.abc import Mapping
from typing import Any

from workers.evaluation.barren import BarrenSettings
from workers.evaluation.cascade import EvaluationConfig
from workers.evaluation.errors import SandboxError
from workers.evaluation.guard import TrustedConfig
from workers.evaluation.sandbox.config import SandboxConfig, parse_bytes
from workers.evaluation.vqe import VQESettings

log = logging.getLogger("qmind.settings")

PREFIX = "QMIND_"
BRANCHES: dict[str, tuple[str, type]] = {
    "sandbox": ("QMIND_SANDBOX_", SandboxConfig),
    "trusted": ("QMIND_TRUSTED_", TrustedConfig),
    "barren": ("QMIND_BP_", BarrenSettings),
    "vqe": ("QMIND_VQE_", VQESettings),
}
"""Tree branch -> (its variables' prefix, its settings class)."""
DEPRECATED: dict[str, str] = {"QMIND_VQE_ENGINE": "QMIND_ENGINE"}
"""Old variable -> the one that replaced it (read for one more release, with a warning)."""
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_LOGGED: set[str] = set()


def knob_names() -> dict[str, str]:
    """Every scoring variable -> its place in the tree (``'QMIND_VQE_RESTARTS' -> 'vqe.restarts'``)."""
    names = {}
    for field in dataclasses.fields(EvaluationConfig):
        if field.name in BRANCHES:
            prefix, cls = BRANCHES[field.name]
            names.update({prefix + f.name.upper(): f"{field.name}.{f.name}" for f in dataclasses.fields(cls)})
        else:
            names[PREFIX + field.name.upper()] = field.name
    return names


def scoring_settings(environ: Mapping[str, str] | None = None) -> EvaluationConfig:
    """The whole tree: defaults overridden by the variables set in ``environ`` (default ``os.environ``)."""
    env = _current(environ)
    branches = {name: _read(cls, prefix, env) for name, (prefix, cls) in BRANCHES.items()}
    return EvaluationConfig(**branches, **_values(EvaluationConfig, PREFIX, env, skip=set(BRANCHES)))


def sandbox_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> SandboxConfig:
    """The sandbox branch alone (``QMIND_SANDBOX_*``), then ``overrides``; a bad value raises ``SandboxError``."""
    values = _values(SandboxConfig, BRANCHES["sandbox"][0], _current(environ))
    return SandboxConfig(**{**values, **overrides})


def trusted_settings(environ: Mapping[str, str] | None = None) -> TrustedConfig:
    """The trusted-stage limits alone (``QMIND_TRUSTED_*``)."""
    return _read(TrustedConfig, BRANCHES["trusted"][0], _current(environ))


def _current(environ: Mapping[str, str] | None) -> dict[str, str]:
    """``environ`` with every deprecated name moved to its new one (a warning each; the new name wins)."""
    env = dict(os.environ if environ is None else environ)
    for old, new in DEPRECATED.items():
        if old not in env:
            continue
        value = env.pop(old)
        if new in env:
            message = f"{old} is deprecated and ignored: {new} is set and wins"
        else:
            env[new] = value
            message = f"{old} is deprecated: set {new} instead (read for one more release)"
        warnings.warn(message, DeprecationWarning, stacklevel=3)
        if message not in _LOGGED:  # once per process, not once per task
            _LOGGED.add(message)
            log.warning("%s", message)
    return env


def _read(cls: type, prefix: str, env: Mapping[str, str]) -> Any:
    return cls(**_values(cls, prefix, env))


def _values(cls: type, prefix: str, env: Mapping[str, str], skip: set[str] = frozenset()) -> dict[str, Any]:
    """Field name -> parsed value, for the fields of ``cls`` whose variable is set (and not blank)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        name = prefix + field.name.upper()
        raw = env.get(name)
        if field.name in skip or raw is None or not raw.strip():
            continue
        try:
            values[field.name] = _parse(field.name, hints[field.name], raw.strip())
        except (TypeError, ValueError) as exc:
            error = SandboxError if cls is SandboxConfig else ValueError
            raise error(f"{name}={raw!r} is not valid: {exc}") from exc
    return values


def _parse(name: str, kind: Any, raw: str) -> Any:
    """``raw`` as a value of the annotated type ``kind``."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if raw.lower() == "none":
            return None
        kind = next(a for a in args if a is not type(None))
    if name.endswith("_bytes"):
        return parse_bytes(raw)
    if typing.get_origin(kind) is tuple:
        return tuple(p for p in raw.split(os.pathsep) if p)
    if kind is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")
        return raw.lower() in _TRUE
    if kind in (int, float, str):
        return kind(raw)
    raise TypeError(f"no parser for a setting of type {kind!r}")
