"""Dataset files (JSON Lines or Parquet, through Hugging Face ``datasets``) and their ``FILE.meta.json``
sidecar.

Rows go through ``datasets.Dataset`` (one schema for every row); JSON Lines are written with ``json.dumps`` so
floats keep full precision. A file is written to a temporary name beside the target and renamed into place,
then its meta file (what the export took: query, filters, counts, store, time, git commit, the file's sha256).
Readers load both, so a checkpoint can name exactly the data it was trained on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pathlib
import subprocess
from typing import Any

from .errors import TrainingError

FORMATS = ("jsonl", "parquet")
META_SUFFIX = ".meta.json"
_REPO = pathlib.Path(__file__).resolve().parents[1]


def format_for(path: pathlib.Path, fmt: str | None) -> str:
    """The explicit format, else the one the extension names (.parquet -> parquet, anything else -> jsonl)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise TrainingError(f"unknown format '{fmt}'; expected one of {', '.join(FORMATS)}")
        return fmt
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "jsonl"


def meta_path(path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    return path.with_name(path.name + META_SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit() -> dict[str, Any] | None:
    """The code's commit and whether the work tree had changes (None when git or the repository is absent)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_rows(
    rows: list[dict[str, Any]], out: str | os.PathLike, *, fmt: str | None = None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Write ``rows`` (all with the same keys) and the meta sidecar; returns the meta as written."""
    from datasets import Dataset

    out = pathlib.Path(out)
    if not out.parent.is_dir():
        raise TrainingError(f"cannot write {out}: folder {out.parent} does not exist")
    if not rows:
        raise TrainingError(f"refusing to write an empty dataset to {out}")
    fmt = format_for(out, fmt)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        dataset = Dataset.from_list(rows)
        if fmt == "parquet":
            dataset.to_parquet(str(tmp))
        else:
            # not Dataset.to_json: pandas' writer rounds floats to 10 decimals (an error of 8e-15 -> 0.0)
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in dataset:  # rows as datasets normalised them (one schema for every row)
                    fh.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        os.replace(tmp, out)
    except (OSError, ValueError, TypeError) as exc:
        raise TrainingError(f"could not write {out} as {fmt}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    full = {
        **meta,
        "file": str(out.resolve()),
        "format": fmt,
        "rows": len(rows),
        "columns": list(rows[0]),
        "sha256": file_sha256(out),
        "created_at": meta.get("created_at") or utc_now(),
        "git": git_commit(),
    }
    side = meta_path(out)
    tmp_meta = side.with_name(f".{side.name}.tmp")
    tmp_meta.write_text(json.dumps(full, indent=2, default=str, allow_nan=False) + "\n")
    os.replace(tmp_meta, side)
    return full


def read_meta(path: str | os.PathLike, *, check_hash: bool = True) -> dict[str, Any]:
    """The meta sidecar of a dataset file; refuses a missing sidecar or a file changed since the export."""
    path = pathlib.Path(path)
    side = meta_path(path)
    if not path.is_file():
        raise TrainingError(
            f"dataset file {path} does not exist; create it with `qmind export ... --out {path}`"
        )
    if not side.is_file():
        raise TrainingError(
            f"{path} has no {side.name} beside it: training data must come from `qmind export` "
            f"so the checkpoint can name what it was trained on"
        )
    try:
        meta = json.loads(side.read_text())
    except ValueError as exc:
        raise TrainingError(f"{side} is not valid JSON: {exc}") from exc
    if check_hash and meta.get("sha256") and meta["sha256"] != file_sha256(path):
        raise TrainingError(
            f"{path} changed after it was exported (sha256 differs from {side.name}); export it "
            f"again instead of editing it"
        )
    return meta


def load_rows(path: str | os.PathLike):
    """The file as a ``datasets.Dataset`` (the ``train`` split of ``load_dataset``)."""
    from datasets import load_dataset

    path = pathlib.Path(path)
    builder = "parquet" if format_for(path, None) == "parquet" else "json"
    try:
        return load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # datasets raises many types for unreadable files
        raise TrainingError(f"could not read {path} as {builder}: {exc}") from exc
