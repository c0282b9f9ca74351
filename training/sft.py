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

import logging
import math
import pathlib
from typing import Any

from .backend import LoadedModel, choose_backend, load_for_training
from .checkpoints import filling, reserve, today
from .errors import TrainingError
from .runs import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_TRAINER_DIR,
    TrainResult,
    epochs_used,
    finish,
    first_logged,
    last_logged,
    load_training_data,
    run_config,
)
from .sft_config import SFTSettings
from .trl_args import cpu_adjustments, trl_sft_kwargs

log = logging.getLogger(__name__)


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


