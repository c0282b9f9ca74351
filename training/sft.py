"""``qmind train sft``: supervised fine-tuning on a ``qmind export sft`` file with the seed's QLoRA
configuration.

The trainer is TRL's SFTTrainer on the export's conversational ``messages``, handed to it as prompt (every turn
before the answer) and completion (the assistant turn), so that by default the loss covers the assistant turn
only, exactly the tokens ``qmind train base`` trains on (``as_prompt_completion``); the ``split`` column separates
train and eval rows (goals never straddle the split). The adapter, its tokenizer and config.yaml go to the
next free ``models/checkpoints/quantum-mind-vN``; trainer checkpoints (every ``save_steps``) go to
``models/trainer/...``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
from typing import Any

from .backend import LoadedModel, choose_backend, load_for_training
from .checkpoints import Reservation, filling, register, reserve, today, write_config
from .dataset_files import file_sha256, load_rows, read_meta
from .errors import TrainingError
from .sft_config import SFTSettings
from .trl_args import cpu_adjustments, trl_sft_kwargs

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


def as_prompt_completion(dataset, *, source: str = "the export"):
    """``messages`` rows as TRL's conversational prompt/completion rows: the completion is the last turn (the
    assistant's answer), the prompt every turn before it.

    TRL renders both through the chat template and marks the completion's tokens (``completion_mask``); with
    ``completion_only_loss`` only they carry a loss. Left as ``messages``, TRL trains on the whole conversation
    (system prompt and user prompt included), and its ``assistant_only_loss`` needs ``{% generation %}`` markers
    that neither Qwen2.5's chat template nor this project's have (issue 13: SFT's first loss 5.9 against the base's
    0.012 was the loss on prompt tokens the base never learned to predict)."""
    bad = [i for i, r in enumerate(dataset["messages"]) if len(r) < 2 or r[-1].get("role") != "assistant"]
    if bad:
        raise TrainingError(
            f"rows {bad[:5]} of {source} do not end with an assistant turn; every SFT row must be system/user "
            f"turns followed by the assistant's answer (what `qmind export sft` writes)"
        )
    return dataset.map(
        lambda r: {"prompt": r["messages"][:-1], "completion": r["messages"][-1:]}, remove_columns=["messages"]
    )


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


def effective_settings(
    settings: SFTSettings, loaded: LoadedModel, *, has_eval: bool, state_epoch: float | None
) -> dict[str, Any]:
    """The settings as the trainer used them: backend changes, no evaluation without an eval split, the epochs
    run when ``max_steps`` overrode them."""
    changes = dict(loaded.adjustments)
    if loaded.device == "cpu":
        changes.update(cpu_adjustments(settings))
    return {
        **settings.to_dict(),
        "eval_strategy": settings.eval_strategy if has_eval else "no",
        "num_train_epochs": epochs_used(settings.max_steps, settings.num_train_epochs, state_epoch),
        "backend": loaded.backend,
        "device": loaded.device,
        "changed_for_backend": changes,
    }


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


def sft_trainer(loaded: LoadedModel, settings: SFTSettings, train, evaluation, *, output_dir: str, callbacks=()):
    """TRL's SFTTrainer over prompt/completion rows (``as_prompt_completion``) with the settings' arguments."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **trl_sft_kwargs(settings, output_dir=output_dir, has_eval=len(evaluation) > 0, on_cpu=loaded.device == "cpu")
    )
    return SFTTrainer(
        model=loaded.model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation if len(evaluation) else None,
        processing_class=loaded.tokenizer,
        callbacks=list(callbacks),
    )


def train_sft(
    data: str | pathlib.Path,
    *,
    settings: SFTSettings = SFTSettings(),
    adapter: str | None = None,
    checkpoints_root: str | pathlib.Path = DEFAULT_CHECKPOINTS,
    trainer_root: str | pathlib.Path = DEFAULT_TRAINER_DIR,
    final: bool = False,
    engine=None,
    do_register: bool = True,
) -> TrainResult:
    """Train an adapter on an SFT export and write a registered checkpoint (see the module docstring)."""
    dataset, meta = load_training_data(data, kind="sft")
    for column in ("messages", "split"):
        if column not in dataset.column_names:
            raise TrainingError(f"{data} has no '{column}' column; expected a `qmind export sft` file")
    train = as_prompt_completion(dataset.filter(lambda r: r["split"] == "train").select_columns(["messages"]),
                                 source=str(data))
    evaluation = as_prompt_completion(dataset.filter(lambda r: r["split"] == "eval").select_columns(["messages"]),
                                      source=str(data))
    if len(train) == 0:
        raise TrainingError(f"{data} has no train rows (all {len(dataset)} rows are in the eval split)")
    backend = choose_backend(settings.backend, load_in_4bit=settings.load_in_4bit, adapter=adapter)
    reservation = reserve(checkpoints_root, final=final)
    with filling(reservation):
        loaded = load_for_training(
            settings.base_model,
            settings.lora,
            backend=backend,
            load_in_4bit=settings.load_in_4bit,
            max_seq_length=settings.max_seq_length,
            adapter=adapter,
        )
        log.info("SFT %s on %s (%s, %s): %d train rows, %d eval rows from %s", reservation.version,
                 loaded.base_model, loaded.backend, loaded.device, len(train), len(evaluation), data)
        from .throughput import ThroughputCallback

        output_dir = str(pathlib.Path(trainer_root) / reservation.path.name)
        speed = ThroughputCallback()
        trainer = sft_trainer(loaded, settings, train, evaluation, output_dir=output_dir, callbacks=[speed])
        output = trainer.train()
        run = {
            **_run_record(settings, loaded, trainer, output, evaluation),
            "throughput": speed.record(),
            "training_config": effective_settings(
                settings, loaded, has_eval=len(evaluation) > 0, state_epoch=trainer.state.epoch
            ),
        }
        config = run_config(reservation, loaded, run, data=data, meta=meta, num_examples=len(train),
                            trainer_dir=output_dir)
        return finish(reservation, loaded, config, engine=engine, do_register=do_register)


def _run_record(settings: SFTSettings, loaded, trainer, output, evaluation) -> dict:
    """What the run did, for config.yaml: epochs, losses (train, first, mean, eval), accuracy, perplexity, steps."""
    history = list(trainer.state.log_history)
    eval_metrics = trainer.evaluate() if len(evaluation) else {}
    history.append(eval_metrics)
    eval_loss = last_logged(history, "eval_loss")
    return {
        "epochs": epochs_used(settings.max_steps, settings.num_train_epochs, trainer.state.epoch),
        "final_loss": last_logged(trainer.state.log_history, "loss") or float(output.training_loss),
        "first_loss": first_logged(trainer.state.log_history, "loss"),
        "eval_accuracy": last_logged(history, "eval_mean_token_accuracy"),
        "date": today(),
        "method": "sft",
        "eval_loss": eval_loss,
        "num_eval_examples": len(evaluation),
        "perplexity": math.exp(eval_loss) if eval_loss is not None and eval_loss < 50 else None,
        "mean_train_loss": float(output.training_loss),
        "steps": int(trainer.state.global_step),
        "epochs_completed": float(trainer.state.epoch or 0.0),
        "parent_adapter": loaded.adjustments.get("continued_from"),
    }


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes", "unsloth"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out
