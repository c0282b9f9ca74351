"""``qmind train sft|grpo|register`` and ``qmind eval-model``.

Every training flag defaults to "not given": the settings dataclasses (training/sft_config.py, grpo_config.py)
hold the seed's values, and a flag changes one field. With ``--json`` the trainers' progress goes to stderr
and stdout carries exactly one JSON object.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
from typing import Any

import typer
from rich.table import Table

from . import app
from .common import console, print_json
from .export import split_list, training_errors

train_app = typer.Typer(
    help="Fine-tune the generator: SFT (QLoRA), GRPO, checkpoint registration.", no_args_is_help=True
)
app.add_typer(train_app, name="train")

CKPT_HELP = "Folder of the quantum-mind-vN checkpoints."
URL_HELP = "Store to register the checkpoint in (default: QMIND_DATABASE_URL, else sqlite:///qmind.db)."


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@contextlib.contextmanager
def _progress(as_json: bool):
    """Progress lines (training.*) through rich on stderr; under --json, everything the libraries print goes
    to
    stderr too."""
    import logging

    from rich.logging import RichHandler

    from .common import err_console

    logger = logging.getLogger("training")
    handler = RichHandler(console=err_console, show_path=False)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with _redirect(as_json):
            yield
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def _redirect(as_json: bool):
    if as_json:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        yield


def _engine(url: str | None, register: bool):
    if not register:
        return None
    from db.migrate import ensure_schema
    from db.session import make_engine

    engine = make_engine(url)
    ensure_schema(engine, upgrade=False)
    return engine


def _report(result, as_json: bool) -> None:
    c = result.config
    keys = (
        "method",
        "base_model",
        "num_examples",
        "epochs",
        "steps",
        "final_loss",
        "eval_loss",
        "eval_accuracy",
        "perplexity",
        "final_reward_mean",
        "reward_time_share",
        "date",
    )
    out = {
        "version": result.version,
        "checkpoint": result.checkpoint,
        "model_version_id": result.model_version_id,
        **{k: c.get(k) for k in keys},
        "backend": (c.get("training_config") or {}).get("backend"),
    }
    if as_json:
        print_json(out)
        return
    table = Table(show_header=False, title=f"checkpoint {result.version}")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for k, v in out.items():
        if v is not None:
            table.add_row(k.replace("_", " "), f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)


def _lora(r, alpha, dropout, targets) -> dict[str, Any]:
    return _given(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=split_list(targets) if targets else None
    )


@train_app.command("sft")
def train_sft_cmd(
    data: pathlib.Path = typer.Option(..., "--data", help="A `qmind export sft` file."),
    model: str | None = typer.Option(
        None, "--model", help="Base model (seed: Qwen/Qwen2.5-Coder-7B-Instruct)."
    ),
    adapter: str | None = typer.Option(None, "--adapter", help="Continue training this adapter."),
    backend: str | None = typer.Option(None, "--backend", help="auto, unsloth, peft-4bit or peft."),
    load_in_4bit: bool | None = typer.Option(None, "--4bit/--no-4bit", help="4-bit NF4 base (seed: on)."),
    lora_r: int | None = typer.Option(None, "--lora-r", help="LoRA rank (seed: 32)."),
    lora_alpha: int | None = typer.Option(None, "--lora-alpha", help="LoRA alpha (seed: 64)."),
    lora_dropout: float | None = typer.Option(None, "--lora-dropout", help="LoRA dropout (seed: 0.05)."),
    target_modules: str | None = typer.Option(None, "--target-modules", help="Comma-separated (seed: 7)."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="Peak LR (seed: 2e-4)."),
    lr_scheduler: str | None = typer.Option(None, "--lr-scheduler", help="Schedule (seed: cosine)."),
    warmup_ratio: float | None = typer.Option(None, "--warmup-ratio", help="Warm-up share (seed: 0.1)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Epochs (seed: 3)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after N steps (seed: -1 = epochs)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Per-device batch (seed: 2)."),
    grad_accum: int | None = typer.Option(None, "--grad-accum", help="Accumulation steps (seed: 8)."),
    bf16: bool | None = typer.Option(None, "--bf16/--no-bf16", help="bfloat16 (seed: on; off on CPU)."),
    optim: str | None = typer.Option(
        None, "--optim", help="Optimizer (seed: adamw_8bit; adamw_torch on CPU)."
    ),
    weight_decay: float | None = typer.Option(None, "--weight-decay", help="Weight decay (seed: 0.01)."),
    max_grad_norm: float | None = typer.Option(None, "--max-grad-norm", help="Clipping (seed: 1.0)."),
    max_seq_length: int | None = typer.Option(None, "--max-seq-length", help="Tokens (seed: 2048)."),
    packing: bool | None = typer.Option(None, "--packing/--no-packing", help="Pack sequences (seed: on)."),
    eval_steps: int | None = typer.Option(None, "--eval-steps", help="Evaluate every N steps (seed: 500)."),
    save_steps: int | None = typer.Option(
        None, "--save-steps", help="Trainer checkpoint every N (seed: 500)."
    ),
    save_total_limit: int | None = typer.Option(None, "--save-total-limit", help="Kept (seed: 3)."),
    logging_steps: int | None = typer.Option(None, "--logging-steps", help="Log every N steps (seed: 10)."),
    seed: int | None = typer.Option(None, "--seed", help="Trainer seed (seed: 42)."),
    dataloader_workers: int | None = typer.Option(None, "--dataloader-workers", help="Workers (seed: 4)."),
    gradient_checkpointing: bool | None = typer.Option(
        None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Seed: on."
    ),
    assistant_only_loss: bool | None = typer.Option(
        None, "--assistant-only-loss/--full-loss", help="Loss on the assistant turn only (default: full)."
    ),
    checkpoints: pathlib.Path = typer.Option(
        pathlib.Path("models/checkpoints"), "--checkpoints", help=CKPT_HELP
    ),
    trainer_dir: pathlib.Path = typer.Option(
        pathlib.Path("models/trainer"),
        "--trainer-dir",
        help="Where trainer checkpoints (every save_steps) go.",
    ),
    final: bool = typer.Option(False, "--final", help="Write quantum-mind-final instead of the next vN."),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    no_register: bool = typer.Option(
        False, "--no-register", help="Do not register the checkpoint in the store."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress goes to stderr)."),
) -> None:
    """Supervised fine-tuning with the seed's QLoRA configuration; writes and registers a checkpoint."""
    from training.sft import train_sft
    from training.sft_config import SFTSettings

    lora = _lora(lora_r, lora_alpha, lora_dropout, target_modules)
    if gradient_checkpointing is not None:
        lora["use_gradient_checkpointing"] = gradient_checkpointing
    with training_errors(url, as_json=as_json):
        settings = SFTSettings().with_overrides(
            lora=lora,
            **_given(
                base_model=model,
                backend=backend,
                load_in_4bit=load_in_4bit,
                learning_rate=learning_rate,
                lr_scheduler_type=lr_scheduler,
                warmup_ratio=warmup_ratio,
                num_train_epochs=epochs,
                max_steps=max_steps,
                per_device_train_batch_size=batch_size,
                gradient_accumulation_steps=grad_accum,
                bf16=bf16,
                optim=optim,
                weight_decay=weight_decay,
                max_grad_norm=max_grad_norm,
                max_seq_length=max_seq_length,
                packing=packing,
                eval_steps=eval_steps,
                save_steps=save_steps,
                save_total_limit=save_total_limit,
                logging_steps=logging_steps,
                seed=seed,
                dataloader_num_workers=dataloader_workers,
                assistant_only_loss=assistant_only_loss,
            ),
        )
        engine = _engine(url, not no_register)
        with _progress(as_json):
            result = train_sft(
                data,
                settings=settings,
                adapter=adapter,
                checkpoints_root=checkpoints,
                trainer_root=trainer_dir,
                final=final,
                engine=engine,
                do_register=not no_register,
            )
    _report(result, as_json)


@train_app.command("grpo")
def train_grpo_cmd(
    data: pathlib.Path = typer.Option(..., "--data", help="A `qmind export grpo` file."),
    adapter: str | None = typer.Option(None, "--adapter", help="Adapter to continue: folder, latest, vN name."),
    model: str | None = typer.Option(None, "--model", help="Base model (default: the adapter's base)."),
    backend: str | None = typer.Option(None, "--backend", help="auto, peft-4bit or peft."),
    load_in_4bit: bool | None = typer.Option(None, "--4bit/--no-4bit", help="4-bit NF4 base (default: on)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Epochs (seed: 1)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after N steps (-1 = epochs)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Per-device batch (seed: 1)."),
    grad_accum: int | None = typer.Option(None, "--grad-accum", help="Accumulation steps (seed: 4)."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="LR (seed: 5e-6)."),
    num_generations: int | None = typer.Option(None, "--num-generations", help="Group size (default: 4)."),
    max_completion_length: int | None = typer.Option(None, "--max-completion-length", help="Default 1024."),
    temperature: float | None = typer.Option(None, "--temperature", help="Sampling temperature (0.7)."),
    top_p: float | None = typer.Option(None, "--top-p", help="Default 0.9."),
    top_k: int | None = typer.Option(None, "--top-k", help="Default 50."),
    repetition_penalty: float | None = typer.Option(None, "--repetition-penalty", help="Default 1.1."),
    beta: float | None = typer.Option(None, "--beta", help="KL coefficient (default 0)."),
    reward: str | None = typer.Option(
        None, "--reward", help="seed (max(0, 1 - 10 error), default) or shaped."
    ),
    reward_workers: int | None = typer.Option(
        None, "--reward-workers", help="Judging processes (default: one per core; 0: in-process)."
    ),
    reward_seed: int | None = typer.Option(
        None, "--reward-seed", help="Seed of BP sampling and VQE restarts."
    ),
    bp_samples: int | None = typer.Option(None, "--bp-samples", help="Barren-plateau samples per size."),
    restarts: int | None = typer.Option(None, "--restarts", help="VQE restarts per completion."),
    vllm: bool | None = typer.Option(
        None, "--vllm/--no-vllm", help="Generate with vLLM (default: if present)."
    ),
    rollout: str | None = typer.Option(
        None, "--rollout", help="trl (TRL's generate or vLLM, default) or graph (the CUDA-graph decoder)."
    ),
    rollout_compile: bool | None = typer.Option(
        None, "--rollout-compile/--no-rollout-compile", help="graph: torch.compile the step (default: off)."
    ),
    bf16: bool | None = typer.Option(None, "--bf16/--no-bf16", help="bfloat16 (default: on; off on CPU)."),
    optim: str | None = typer.Option(None, "--optim", help="Optimizer (default adamw_8bit)."),
    logging_steps: int | None = typer.Option(None, "--logging-steps", help="Default 1."),
    save_steps: int | None = typer.Option(None, "--save-steps", help="Default 500."),
    seed: int | None = typer.Option(None, "--seed", help="Trainer seed (default 42)."),
    lora_r: int | None = typer.Option(None, "--lora-r", help="New adapter's rank (seed: 32)."),
    lora_alpha: int | None = typer.Option(None, "--lora-alpha", help="New adapter's alpha (seed: 64)."),
    gradient_checkpointing: bool | None = typer.Option(
        None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Default: on."
    ),
    checkpoints: pathlib.Path = typer.Option(
        pathlib.Path("models/checkpoints"), "--checkpoints", help=CKPT_HELP
    ),
    trainer_dir: pathlib.Path = typer.Option(
        pathlib.Path("models/trainer"), "--trainer-dir", help="Where trainer checkpoints go."
    ),
    final: bool = typer.Option(False, "--final", help="Write quantum-mind-final instead of the next vN."),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    no_register: bool = typer.Option(False, "--no-register", help="Do not register the checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress goes to stderr)."),
) -> None:
    """GRPO with verifiable rewards from the sandboxed evaluation cascade; writes and registers a
    checkpoint."""

    from training.grpo import train_grpo
    from training.grpo_config import GRPOSettings
    from workers.settings import scoring_settings

    lora = _lora(lora_r, lora_alpha, None, None)
    if gradient_checkpointing is not None:
        lora["use_gradient_checkpointing"] = gradient_checkpointing
    with training_errors(url, as_json=as_json):
        settings = GRPOSettings().with_overrides(
            lora=lora,
            **_given(
                base_model=model,
                backend=backend,
                load_in_4bit=load_in_4bit,
                num_train_epochs=epochs,
                max_steps=max_steps,
                per_device_train_batch_size=batch_size,
                gradient_accumulation_steps=grad_accum,
                learning_rate=learning_rate,
                num_generations=num_generations,
                max_completion_length=max_completion_length,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                repetition_penalty=repetition_penalty,
                beta=beta,
                reward=reward,
                reward_workers=reward_workers,
                reward_seed=reward_seed,
                use_vllm=vllm,
                rollout=rollout,
                rollout_compile=rollout_compile,
                bf16=bf16,
                optim=optim,
                logging_steps=logging_steps,
                save_steps=save_steps,
                seed=seed,
            ),
        )
        config = scoring_settings().with_knobs(bp_samples=bp_samples, restarts=restarts)
        engine = _engine(url, not no_register)
        with _progress(as_json):
            from .models import adapter_option

            result = train_grpo(
                data,
                settings=settings,
                adapter=adapter_option(adapter, url, as_json=as_json),
                explicit_base=model is not None,
                checkpoints_root=checkpoints,
                trainer_root=trainer_dir,
                final=final,
                engine=engine,
                do_register=not no_register,
                evaluation_config=config,
            )
    _report(result, as_json)


@train_app.command("register")
def register_cmd(
    checkpoint: pathlib.Path = typer.Argument(..., help="A checkpoint folder (with config.yaml)."),
    final: bool = typer.Option(
        False, "--final", help="Also copy it to quantum-mind-final and register that."
    ),
    checkpoints: pathlib.Path = typer.Option(
        pathlib.Path("models/checkpoints"), "--checkpoints", help=CKPT_HELP
    ),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Register a checkpoint as a model version (idempotent); with --final, promote it to
    quantum-mind-final."""
    from training.checkpoints import promote, read_config, register

    with training_errors(url, as_json=as_json):
        engine = _engine(url, True)
        path = promote(checkpoints, checkpoint) if final else checkpoint
        mv_id = register(engine, path)
        version = read_config(path)["version"]
    if as_json:
        print_json(
            {"checkpoint": str(pathlib.Path(path).resolve()), "version": version, "model_version_id": mv_id}
        )
    else:
        console.print(f"{path}: model version {mv_id} ({version})")
