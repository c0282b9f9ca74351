"""``qmind train sft|grpo|register`` and ``qmind eval-model``.

The training options are generated from the settings dataclasses (training/sft_config.py, grpo_config.py;
``options.settings_options``): each field is one option with its help and default, every option defaults to "not
given", and a flag changes one field. With ``--json`` the trainers' progress goes to stderr and stdout carries
exactly one JSON object.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys

import typer

from training.grpo_config import GRPOSettings
from training.sft_config import SFTSettings

from . import app
from .common import console, field_table, print_json
from .export import training_errors
from .options import settings_options

train_app = typer.Typer(
    help="Fine-tune the generator: SFT (QLoRA), GRPO, checkpoint registration.", no_args_is_help=True
)
app.add_typer(train_app, name="train")

CKPT_HELP = "Folder of the quantum-mind-vN checkpoints."
URL_HELP = "Store to register the checkpoint in (default: QMIND_DATABASE_URL, else sqlite:///qmind.db)."


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
    table = field_table(f"checkpoint {result.version}")
    for k, v in out.items():
        if v is not None:
            table.add_row(k.replace("_", " "), f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)


@train_app.command("sft")
@settings_options(SFTSettings)
def train_sft_cmd(
    data: pathlib.Path = typer.Option(..., "--data", help="A `qmind export sft` file."),
    adapter: str | None = typer.Option(None, "--adapter", help="Continue training this adapter."),
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
    given: dict | None = None,
) -> None:
    """Supervised fine-tuning with the seed's QLoRA configuration; writes and registers a checkpoint."""
    from training.fields import with_paths
    from training.sft import train_sft

    with training_errors(url, as_json=as_json):
        settings = with_paths(SFTSettings(), given or {})
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
@settings_options(GRPOSettings)
def train_grpo_cmd(
    data: pathlib.Path = typer.Option(..., "--data", help="A `qmind export grpo` file."),
    adapter: str | None = typer.Option(None, "--adapter", help="Adapter to continue: folder, latest, vN name."),
    bp_samples: int | None = typer.Option(
        None, "--bp-samples", help="Barren-plateau samples per size (default: QMIND_BP_SAMPLES, else 200)."
    ),
    restarts: int | None = typer.Option(
        None, "--restarts", help="VQE restarts per completion (default: QMIND_VQE_RESTARTS, else 4)."
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
    given: dict | None = None,
) -> None:
    """GRPO with verifiable rewards from the sandboxed evaluation cascade; writes and registers a
    checkpoint."""
    from training.fields import with_paths
    from training.grpo import train_grpo
    from workers.settings import scoring_settings

    given = given or {}
    with training_errors(url, as_json=as_json):
        settings = with_paths(GRPOSettings(), given)
        config = scoring_settings().with_knobs(bp_samples=bp_samples, restarts=restarts)
        engine = _engine(url, not no_register)
        with _progress(as_json):
            from .models import adapter_option

            result = train_grpo(
                data,
                settings=settings,
                adapter=adapter_option(adapter, url, as_json=as_json),
                explicit_base="base_model" in given,
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
