"""``qmind train grpo``: TRL's GRPOTrainer on a ``qmind export grpo`` file with verifiable circuit rewards.

The policy is the base model with a LoRA adapter: usually the SFT checkpoint (``adapter``), continued;
otherwise a new adapter with the seed's LoRA settings. Completions are sampled with vLLM when it is installed
on a CUDA host (``use_vllm``, colocated), else with transformers. Every completion is judged by the sandboxed
evaluation cascade (``training.rewards``). The result is a new checkpoint ``quantum-mind-vN`` registered in
the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pathlib

from .backend import cuda_available, has_module, load_for_training
from .checkpoints import filling, read_config, reserve, today
from .errors import TrainingError
from .grpo_config import GRPOSettings
from .rewards import CircuitReward
from .runs import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_TRAINER_DIR,
    TrainResult,
    epochs_used,
    finish,
    last_logged,
    load_training_data,
    run_config,
)
from .trl_args import trl_grpo_kwargs

log = logging.getLogger(__name__)
REQUIRED_COLUMNS = ("prompt", "goal_spec")
HISTORY_KEYS = (
    "step",
    "loss",
    "reward",
    "valid",
    "verified",
    "code_extracted",
    "completions/mean_length",
    "completions/clipped_ratio",
)


ROLLOUTS = ("trl", "graph")


def resolve_vllm(requested: bool | None, rollout: str = "trl") -> bool:
    if rollout not in ROLLOUTS:
        raise TrainingError(f"unknown rollout engine '{rollout}'; expected one of {', '.join(ROLLOUTS)}")
    if rollout == "graph":
        if requested:
            raise TrainingError("--rollout graph replaces vLLM generation; leave out --vllm")
        return False
    if requested is None:
        return has_module("vllm") and cuda_available()
    if requested and not (has_module("vllm") and cuda_available()):
        raise TrainingError(
            "--vllm needs vllm installed on a CUDA host; run without it to generate with transformers"
        )
    return requested


def rollout_record(settings: GRPOSettings, generation, rollout, output, device: str) -> dict:
    """config.yaml's ``rollout``: who generated, and what generation and the whole steps cost."""
    steps = int(output.global_step) or 1
    record = {"engine": settings.rollout, "device": device, "generation": generation.to_dict(),
              "train_seconds": float(output.metrics.get("train_runtime", 0.0)),
              "seconds_per_step": float(output.metrics.get("train_runtime", 0.0)) / steps}
    if device == "cuda":
        import torch

        record["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    if rollout is not None:
        record["decoder"] = rollout.stats.to_dict()
    return record


def reward_timing(reward_seconds: float, train_seconds: float | None) -> dict[str, float | None]:
    """config.yaml's record of how long the trainer waited for rewards (sandboxed judging) against the run."""
    share = reward_seconds / train_seconds if train_seconds else None
    return {
        "reward_seconds": round(reward_seconds, 3),
        "train_seconds": None if train_seconds is None else round(float(train_seconds), 3),
        "reward_time_share": None if share is None else round(share, 4),
    }


def base_for_adapter(settings: GRPOSettings, adapter: str | None, explicit_base: bool) -> GRPOSettings:
    """The adapter's own base model (from its config.yaml) unless one was given; a mismatch is refused."""
    if adapter is None or not (pathlib.Path(adapter) / "config.yaml").is_file():
        return settings
    base = str(read_config(adapter)["base_model"])
    if explicit_base and settings.base_model != base:
        from workers.generation.models import resolve

        if resolve(settings.base_model)[0] != base:
            raise TrainingError(
                f"--model {settings.base_model} is not the base of adapter {adapter} ({base}); "
                f"leave --model out to use the adapter's base"
            )
    return dataclasses.replace(settings, base_model=base)


def _trainer(settings: GRPOSettings, loaded, reward, dataset, *, output_dir: str, use_vllm: bool):
    """TRL's GRPOTrainer for these settings (the CUDA-graph rollout when asked for): (trainer, rollout or None)."""
    from trl import GRPOConfig, GRPOTrainer

    from .rollout import GraphRollout

    args = GRPOConfig(
        **trl_grpo_kwargs(settings, output_dir=output_dir, on_cpu=loaded.device == "cpu", use_vllm=use_vllm)
    )
    rollout = GraphRollout(compile=settings.rollout_compile, seed=settings.seed) if (
        settings.rollout == "graph") else None
    trainer = GRPOTrainer(
        model=loaded.model,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=loaded.tokenizer,
        rollout_func=rollout,
    )
    return trainer, rollout


def _run_record(settings: GRPOSettings, loaded, trainer, output, reward, *, use_vllm: bool, rollout: dict) -> dict:
    """What the run did, for config.yaml: epochs, losses, rewards, steps, timing, the settings as run, the
    rollouts (``rollout``) and the reward per logged step."""
    history = list(trainer.state.log_history)
    changed = dict(loaded.adjustments)
    if loaded.device == "cpu":
        changed.update(bf16=False, optim=str(getattr(trainer.args.optim, "value", trainer.args.optim)))
    epochs = epochs_used(settings.max_steps, settings.num_train_epochs, trainer.state.epoch)
    return {
        "epochs": epochs,
        "final_loss": last_logged(history, "loss")
        if last_logged(history, "loss") is not None
        else float(output.training_loss),
        "eval_accuracy": None,
        "date": today(),
        "method": "grpo",
        "reward_kind": settings.reward,
        "final_reward_mean": last_logged(history, "reward"),
        "final_valid_fraction": last_logged(history, "valid"),
        "steps": int(trainer.state.global_step),
        **reward_timing(reward.seconds, output.metrics.get("train_runtime")),
        "parent_adapter": loaded.adjustments.get("continued_from"),
        "training_config": {
            **settings.to_dict(),
            "num_train_epochs": epochs,
            "backend": loaded.backend,
            "device": loaded.device,
            "use_vllm": use_vllm,
            "changed_for_backend": changed,
        },
        "rollout": rollout,
        "reward_history": [
            {k: v for k, v in h.items() if k.startswith(HISTORY_KEYS)} for h in history if "reward" in h
        ],
    }


def train_grpo(
    data: str | pathlib.Path,
    *,
    settings: GRPOSettings = GRPOSettings(),
    adapter: str | None = None,
    explicit_base: bool = False,
    checkpoints_root: str | pathlib.Path = DEFAULT_CHECKPOINTS,
    trainer_root: str | pathlib.Path = DEFAULT_TRAINER_DIR,
    final: bool = False,
    engine=None,
    do_register: bool = True,
    evaluation_config=None,
) -> TrainResult:
    """Run GRPO on a prompt export and write a registered checkpoint (see the module docstring)."""
    dataset, meta = load_training_data(data, kind="grpo")
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise TrainingError(f"{data} lacks columns {missing}; expected a `qmind export grpo` file")
    settings = base_for_adapter(settings, adapter, explicit_base)
    use_vllm = resolve_vllm(settings.use_vllm, settings.rollout)
    reservation = reserve(checkpoints_root, final=final)
    reward = CircuitReward(
        settings.reward, workers=settings.reward_workers, seed=settings.reward_seed, config=evaluation_config
    )
    with filling(reservation), contextlib.closing(reward):
        loaded = load_for_training(
            settings.base_model,
            settings.lora,
            backend=settings.backend,
            load_in_4bit=settings.load_in_4bit,
            adapter=adapter,
            allow_unsloth=False,
        )
        from .rollout import RolloutStats, measure_generation

        log.info("GRPO %s on %s (%s, %s, %s generation): %d prompt rows from %s, %s reward, %d judging workers",
                 reservation.version, loaded.base_model, loaded.backend, loaded.device,
                 "vLLM" if use_vllm else "transformers", len(dataset), data, settings.reward, reward.pool.workers)
        output_dir = str(pathlib.Path(trainer_root) / reservation.path.name)
        trainer, rollout = _trainer(settings, loaded, reward, dataset, output_dir=output_dir, use_vllm=use_vllm)
        generation = RolloutStats()
        measure_generation(trainer, generation)
        output = trainer.train()
        run = _run_record(settings, loaded, trainer, output, reward, use_vllm=use_vllm,
                          rollout=rollout_record(settings, generation, rollout, output, loaded.device))
        config = run_config(reservation, loaded, run, data=data, meta=meta, num_examples=len(dataset),
                            trainer_dir=output_dir)
        return finish(reservation, loaded, config, engine=engine, do_register=do_register)
