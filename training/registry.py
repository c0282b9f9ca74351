"""The model registry: registered adapters (``quantum-mind-vN``, ``quantum-mind-final``) in the store's
``model_versions`` table, found by name or as ``latest`` instead of by folder.

``qmind train sft|grpo`` and ``qmind train register`` write the rows (``training.checkpoints.register``);
``--adapter latest`` / ``--adapter quantum-mind-v3`` resolve through :func:`resolve_adapter`; ``qmind models
list`` prints :func:`listing`.
"""

from __future__ import annotations

from typing import Any

from db.models import ModelVersion
from workers.model_version import LATEST, UnregisteredAdapterError, registered_versions, resolve_registered
from workers.model_version import is_registry_name as _is_registry_name

from .errors import TrainingError

__all__ = ["LATEST", "is_registry_name", "listing", "resolve_adapter"]


def _registered(session) -> list[ModelVersion]:
    return registered_versions(session)


def is_registry_name(spec: str) -> bool:
    """``latest`` or a version name (not a folder that exists)."""
    return _is_registry_name(spec)


def resolve_adapter(engine, spec: str | None) -> str | None:
    """The adapter folder ``spec`` names: ``latest`` (the most recently registered adapter), a registered
    version name, or a folder (returned as given)."""
    if spec is None or not is_registry_name(spec):
        return spec
    from db.session import session_scope

    with session_scope(engine) as session:
        try:
            return resolve_registered(session, spec)
        except UnregisteredAdapterError as exc:
            raise TrainingError(str(exc)) from exc


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
