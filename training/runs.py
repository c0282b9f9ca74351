"""What every training run shares (``train_sft``, ``train_grpo``): loading its export, the config.yaml it writes
(``run_config``: the checkpoint, its base and its data first, then what the run did), saving the adapter and
registering it (``finish``), and reading TRL's log history."""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
from typing import Any

from .backend import LoadedModel
from .checkpoints import Reservation, register, write_config
from .dataset_files import file_sha256, load_rows, read_meta
from .errors import TrainingError

log = logging.getLogger(__name__)
DEFAULT_CHECKPOINTS = "models/checkpoints"
DEFAULT_TRAINER_DIR = "models/trainer"


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """A finished training run."""

    checkpoint: str
    version: str
    config: dict
    """The config.yaml written into the checkpoint."""
    model_version_id: int | None
    """The store's id for this adapter (None with ``register=False``)."""


def load_training_data(path: str | pathlib.Path, *, kind: str):
    """(dataset, meta) of an export of ``kind``, refusing other kinds and edited files."""
    meta = read_meta(path)
    if meta.get("kind") != kind:
        raise TrainingError(
            f"{path} is a '{meta.get('kind')}' export; this trainer needs `qmind export {kind}`"
        )
    return load_rows(path), meta


def data_record(path: str | pathlib.Path, meta: dict[str, Any]) -> dict[str, Any]:
    """config.yaml's ``training_data``: the export file, its hash and the export's own record."""
    return {"file": str(pathlib.Path(path).resolve()), "sha256": file_sha256(path), "meta": meta}


def last_logged(history: list[dict], key: str) -> float | None:
    for entry in reversed(history):
        if key in entry and entry[key] is not None and math.isfinite(entry[key]):
            return float(entry[key])
    return None


def first_logged(history: list[dict], key: str) -> float | None:
    return last_logged(list(reversed(history)), key)


def epochs_used(max_steps: int, epochs: float, state_epoch: float | None) -> float:
    """The epochs a run really did: the configured ones, or, when ``max_steps`` overrode them, the trainer's
    count when it stopped (a fraction when it stopped inside the first pass)."""
    return round(float(state_epoch or 0.0), 4) if max_steps > 0 else epochs


def run_config(reservation: Reservation, loaded: LoadedModel, run: dict[str, Any], *, data: str | pathlib.Path,
               meta: dict[str, Any], num_examples: int, trainer_dir: str | pathlib.Path) -> dict[str, Any]:
    """config.yaml of a training run: the checkpoint, its base and its data, then ``run`` (what the run did), then
    the trainer's folder and the library versions."""
    return {
        "version": reservation.version,
        "base_model": loaded.base_model,
        "training_data": data_record(data, meta),
        "num_examples": num_examples,
        **run,
        "trainer_dir": str(pathlib.Path(trainer_dir).resolve()),
        "versions": library_versions(),
    }


def finish(
    reservation: Reservation,
    loaded: LoadedModel,
    config: dict[str, Any],
    *,
    engine=None,
    do_register: bool = True,
) -> TrainResult:
    """Save adapter + tokenizer + config.yaml, move the checkpoint into place, register it."""
    reservation.partial.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(str(reservation.partial))  # adapter weights only
    loaded.tokenizer.save_pretrained(str(reservation.partial))
    write_config(reservation.partial, config)
    path = reservation.commit()
    log.info("checkpoint %s written to %s", reservation.version, path)
    model_version_id = None
    if do_register:
        if engine is None:
            from db.session import make_engine

            engine = make_engine()
        try:
            model_version_id = register(engine, path)
        except Exception as exc:  # the checkpoint is complete; only the store failed
            raise TrainingError(
                f"checkpoint {path} is complete but registering it failed ({exc}); register it "
                f"later with `qmind train register {path}`"
            ) from exc
        log.info("registered as model version %s", model_version_id)
    return TrainResult(str(path), reservation.version, config, model_version_id)


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes", "unsloth"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out
