"""The model registry: registered adapters (``quantum-mind-vN``, ``quantum-mind-final``) in the store's
``model_versions`` table, found by name or as ``latest`` instead of by folder.

``qmind train sft|grpo`` and ``qmind train register`` write the rows (``training.checkpoints.register``);
``--adapter latest`` / ``--adapter quantum-mind-v3`` resolve through :func:`resolve_adapter`; ``qmind models
list`` prints :func:`listing`.
"""

from __future__ import annotations

import pathlib
from typing import Any

from sqlalchemy import select

from db.models import ModelVersion

from .checkpoints import PREFIX
from .errors import TrainingError

LATEST = "latest"


def _registered(session) -> list[ModelVersion]:
    stmt = (select(ModelVersion)
            .where(ModelVersion.adapter_path.is_not(None), ModelVersion.name.startswith(f"{PREFIX}-"))
            .order_by(ModelVersion.created_at, ModelVersion.id))
    return list(session.execute(stmt).scalars())


def is_registry_name(spec: str) -> bool:
    """``latest`` or a version name (not a folder that exists)."""
    return spec == LATEST or (spec.startswith(f"{PREFIX}-") and not pathlib.Path(spec).exists())


def resolve_adapter(engine, spec: str | None) -> str | None:
    """The adapter folder ``spec`` names: ``latest`` (the most recently registered adapter), a registered
    version name, or a folder (returned as given)."""
    if spec is None or not is_registry_name(spec):
        return spec
    from db.session import session_scope

    with session_scope(engine) as session:
        rows = _registered(session)
        if spec != LATEST:
            rows = [r for r in rows if r.name == spec]
        if not rows:
            names = sorted({r.name for r in _registered(session)})
            raise TrainingError(f"no registered adapter {'yet' if spec == LATEST else repr(spec)} in the store; "
                                f"registered: {names or 'none'} (`qmind models list`; `qmind train register DIR`)")
        return rows[-1].adapter_path


def listing(engine) -> list[dict[str, Any]]:
    """Every registered adapter, oldest first: name, base, parent version, training data hash, losses and the
    latest eval-model rates."""
    from db.session import session_scope

    with session_scope(engine) as session:
        rows = _registered(session)
        by_path = {r.adapter_path: r.name for r in rows}
        out = []
        for r in rows:
            config = r.training_config or {}
            evaluation = (r.metrics or {}).get("eval_model") or {}
            out.append({
                "id": r.id, "name": r.name, "method": config.get("method"), "base_model": r.base_model,
                "parent": by_path.get(config.get("parent_adapter"), config.get("parent_adapter")),
                "data_sha256": (config.get("training_data") or {}).get("sha256"),
                "final_loss": config.get("final_loss"), "final_reward_mean": config.get("final_reward_mean"),
                "eval_rates": evaluation.get("rates"), "adapter_path": r.adapter_path,
                "adapter_sha256": r.adapter_sha256, "created_at": r.created_at.isoformat(),
            })
        return out
