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
