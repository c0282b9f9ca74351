"""Checkpoints: ``models/checkpoints/quantum-mind-vN`` (next free N) or ``quantum-mind-final``, adapter only,
each with the seed's ``config.yaml``, registered in the store as a model version.

A checkpoint is written into a hidden ``.quantum-mind-vN.partial`` folder and renamed into place when
complete, so a crashed run leaves no half-written checkpoint. Nothing is written into a checkpoint after it is
registered: the store identifies an adapter by the sha256 of its folder's files
(``workers.model_version.adapter_sha256``, the same function generation batches use), so the registered row
and later generation batches name the same adapter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import pathlib
import re
import shutil
from collections.abc import Iterator
from typing import Any

import yaml

from workers.model_version import REGISTRY_PREFIX, adapter_sha256

from .errors import TrainingError

PREFIX = REGISTRY_PREFIX
FINAL = f"{PREFIX}-final"
CONFIG_FILE = "config.yaml"
SEED_FIELDS = (
    "version",
    "base_model",
    "training_data",
    "num_examples",
    "epochs",
    "final_loss",
    "eval_accuracy",
    "date",
)
_VERSION_RE = re.compile(rf"^{PREFIX}-v(\d+)$")


@dataclasses.dataclass(frozen=True)
class Reservation:
    """A checkpoint name taken for a run: write into ``partial``, then ``commit``."""

    path: pathlib.Path
    version: str
    """``vN`` or ``final``."""
    partial: pathlib.Path

    def commit(self) -> pathlib.Path:
        """Move the finished partial folder into place."""
        if not (self.partial / CONFIG_FILE).is_file():
            raise TrainingError(f"{self.partial} has no {CONFIG_FILE}; the checkpoint is incomplete")
        os.rename(self.partial, self.path)  # replaces the empty reserved folder
        return self.path

    def abandon(self) -> None:
        """Remove the partial folder and the reservation (after a failed run)."""
        shutil.rmtree(self.partial, ignore_errors=True)
        try:
            self.path.rmdir()  # only while still empty
        except OSError:
            pass


@contextlib.contextmanager
def filling(reservation: Reservation) -> Iterator[Reservation]:
    """A training run that fills ``reservation``: any failure (an interrupt included) abandons it, unless its
    folder already holds the committed checkpoint."""
    try:
        yield reservation
    except BaseException:
        if not reservation.path.exists() or not any(reservation.path.iterdir()):
            reservation.abandon()
        raise


def existing_versions(root: str | os.PathLike) -> list[int]:
    root = pathlib.Path(root)
    if not root.is_dir():
        return []
    return sorted(int(m[1]) for p in root.iterdir() if (m := _VERSION_RE.match(p.name)))


def reserve(root: str | os.PathLike, *, final: bool = False) -> Reservation:
    """Take the next free ``quantum-mind-vN`` (or ``quantum-mind-final``, which must not exist yet)."""
    root = pathlib.Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"cannot create the checkpoint folder {root}: {exc}") from exc
    if final:
        path = root / FINAL
        try:
            path.mkdir()
        except FileExistsError:
            raise TrainingError(
                f"{path} already exists; move it away first (the final checkpoint is never overwritten)"
            ) from None
        return Reservation(path, "final", root / f".{FINAL}.partial")
    n = (existing_versions(root) or [0])[-1] + 1
    while True:
        path = root / f"{PREFIX}-v{n}"
        try:
            path.mkdir()
        except FileExistsError:  # taken by a concurrent run
            n += 1
            continue
        return Reservation(path, f"v{n}", root / f".{PREFIX}-v{n}.partial")


def write_config(folder: str | os.PathLike, config: dict[str, Any]) -> pathlib.Path:
    """Write ``config.yaml`` (the seed's fields first, then the rest)."""
    missing = [k for k in SEED_FIELDS if k not in config]
    if missing:
        raise TrainingError(f"config.yaml needs the seed's fields; missing {missing}")
    ordered = {k: config[k] for k in SEED_FIELDS} | {k: v for k, v in config.items() if k not in SEED_FIELDS}
    ordered = json.loads(json.dumps(ordered, default=str))  # plain types only (enums, paths become text)
    path = pathlib.Path(folder) / CONFIG_FILE
    path.write_text(yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True))
    return path


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    path = pathlib.Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise TrainingError(f"{folder} has no {CONFIG_FILE}; expected a checkpoint written by `qmind train`")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TrainingError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise TrainingError(f"{path} must hold a mapping with the seed's fields {SEED_FIELDS}")
    return config


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def model_version_name(config: dict[str, Any]) -> str:
    return f"{PREFIX}-{config['version']}"


def register(engine, folder: str | os.PathLike) -> int:
    """Store the checkpoint as a model version (base model, adapter path, adapter sha256, training config,
    training
    metrics); idempotent. Returns the model-version id."""
    from db.session import session_scope
    from db.writes import upsert_model_version

    folder = pathlib.Path(folder).resolve()
    config = read_config(folder)
    if not (folder / "adapter_config.json").is_file():
        raise TrainingError(
            f"{folder} has no adapter_config.json; expected an adapter written by save_pretrained"
        )
    metrics = {
        k: config.get(k)
        for k in ("final_loss", "eval_loss", "eval_accuracy", "perplexity")
        if config.get(k) is not None
    }
    with session_scope(engine) as session:
        return upsert_model_version(
            session,
            name=model_version_name(config),
            base_model=str(config["base_model"]),
            adapter_sha256=adapter_sha256(str(folder)),
            adapter_path=str(folder),
            training_config=config,
            metrics={"training": metrics},
        )


def promote(root: str | os.PathLike, source: str | os.PathLike) -> pathlib.Path:
    """Copy checkpoint ``source`` to ``quantum-mind-final`` (config.yaml: version final, promoted_from)."""
    source = pathlib.Path(source)
    config = read_config(source)
    reservation = reserve(root, final=True)
    try:
        shutil.copytree(source, reservation.partial)
        write_config(
            reservation.partial,
            {
                **config,
                "version": "final",
                "promoted_from": str(source.resolve()),
                "promoted_from_version": config.get("version"),
            },
        )
        return reservation.commit()
    except BaseException:
        reservation.abandon()
        raise
