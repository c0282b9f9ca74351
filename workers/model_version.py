"""Identify the model behind a batch: base model plus the content hash of its LoRA adapter."""

from __future__ import annotations

import hashlib
import pathlib
from typing import Any


def adapter_sha256(path: str | None) -> str:
    """sha256 over an adapter directory's files (relative names and contents, sorted); '' when there is no
    adapter or it is not a local path (a hub id is then identified by its name alone)."""
    if not path:
        return ""
    root = pathlib.Path(path)
    if not root.exists():
        return ""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root) if file != root else file.name).encode() + b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def model_version_fields(batch: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``db.writes.upsert_model_version`` for a ``GenerationBatch.to_dict()``."""
    generator = str(batch.get("generator") or "unknown")
    base = batch.get("model") or generator
    adapter = batch.get("adapter") or None
    digest = adapter_sha256(adapter)
    if adapter and not digest:
        digest = "name:" + hashlib.sha256(adapter.encode()).hexdigest()[:58]
    name = base if not adapter else f"{pathlib.PurePath(base).name}+{pathlib.PurePath(adapter).name}"
    return {"name": name[:128], "base_model": base, "adapter_sha256": digest, "adapter_path": adapter}


# ---- the registry: adapters registered as ``quantum-mind-vN`` (training.checkpoints.register writes them) ----------
REGISTRY_PREFIX = "quantum-mind"
LATEST = "latest"


class UnregisteredAdapterError(ValueError):
    """``latest`` with nothing registered yet, or a version name the store does not hold."""


def is_registry_name(spec: str | None) -> bool:
    """``latest`` or a version name such as ``quantum-mind-v3`` (not a folder that exists)."""
    if not spec:
        return False
    return spec == LATEST or (spec.startswith(f"{REGISTRY_PREFIX}-") and not pathlib.Path(spec).exists())


def registered_versions(session) -> list:
    """The registered adapters (``ModelVersion`` rows named ``quantum-mind-*`` with a folder), oldest first."""
    from sqlalchemy import select

    from db.models import ModelVersion

    stmt = (select(ModelVersion)
            .where(ModelVersion.adapter_path.is_not(None), ModelVersion.name.startswith(f"{REGISTRY_PREFIX}-"))
            .order_by(ModelVersion.created_at, ModelVersion.id))
    return list(session.execute(stmt).scalars())


def resolve_registered(session, spec: str | None) -> str | None:
    """The adapter folder ``spec`` names: ``latest`` (the most recently registered adapter), a registered version
    name, or a folder / None (returned as given)."""
    if not is_registry_name(spec):
        return spec
    rows = registered_versions(session)
    chosen = rows if spec == LATEST else [r for r in rows if r.name == spec]
    if not chosen:
        names = sorted({r.name for r in rows})
        raise UnregisteredAdapterError(
            f"no registered adapter {'yet' if spec == LATEST else repr(spec)} in the store; registered: "
            f"{names or 'none'} (`qmind models list`; `qmind train register DIR`)")
    return chosen[-1].adapter_path
