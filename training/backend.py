"""Loading a base model with a trainable LoRA adapter: unsloth, peft + bitsandbytes 4-bit, or plain peft.

``auto`` picks unsloth when it is importable on CUDA (the seed's FastLanguageModel path), else transformers +
bitsandbytes NF4 + peft on CUDA (QLoRA), else plain peft (bf16 on CUDA without bitsandbytes, float32 on CPU
for tiny models). Heavy imports happen only inside these functions.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
from typing import Any

from workers.generation.models import UnknownModelError, resolve

from .errors import TrainingError
from .sft_config import BACKENDS, SEED_TARGET_MODULES, LoraSettings


@dataclasses.dataclass
class LoadedModel:
    """A model ready for a TRL trainer."""

    model: Any
    """A peft model whose only trainable parameters are the LoRA weights."""
    tokenizer: Any
    backend: str
    """unsloth, peft-4bit or peft."""
    device: str
    """cuda or cpu."""
    base_model: str
    """What the store records as the base (``workers.generation.models.resolve``): a Hub id or an absolute
    path."""
    target_modules: tuple[str, ...]
    adjustments: dict = dataclasses.field(default_factory=dict)
    """Settings this backend could not keep, and what it used instead."""


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def choose_backend(
    requested: str = "auto",
    *,
    load_in_4bit: bool = True,
    adapter: str | None = None,
    allow_unsloth: bool = True,
) -> str:
    """The backend to use; refuses one this machine cannot run, saying what is missing."""
    if requested not in BACKENDS:
        raise TrainingError(f"unknown backend '{requested}'; expected one of {', '.join(BACKENDS)}")
    cuda = cuda_available()
    if requested == "auto":
        if cuda and load_in_4bit and has_module("unsloth") and adapter is None and allow_unsloth:
            return "unsloth"
        if cuda and load_in_4bit and has_module("bitsandbytes"):
            return "peft-4bit"
        return "peft"
    if requested in ("unsloth", "peft-4bit") and not cuda:
        raise TrainingError(
            f"backend '{requested}' needs a CUDA GPU; none is visible here (use --backend peft for "
            f"a plain-precision run on CPU)"
        )
    if requested == "unsloth" and not allow_unsloth:
        raise TrainingError("unsloth is used for SFT only; GRPO runs on --backend peft-4bit or peft")
    if requested == "unsloth" and not has_module("unsloth"):
        raise TrainingError("backend 'unsloth' asked for, but unsloth is not installed (pip install unsloth)")
    if requested == "unsloth" and adapter is not None:
        raise TrainingError("continuing from an existing adapter is done with --backend peft-4bit or peft")
    if requested == "peft-4bit" and not has_module("bitsandbytes"):
        raise TrainingError("backend 'peft-4bit' needs bitsandbytes (pip install bitsandbytes)")
    return requested


def _resolve(base_model: str) -> tuple[str, tuple[str, ...] | None]:
    try:
        path, spec = resolve(base_model)
    except UnknownModelError as exc:
        raise TrainingError(str(exc)) from exc
    return path, (spec.lora_target_modules if spec is not None else None)


def _tokenizer(path: str, adapter: str | None):
    from transformers import AutoTokenizer

    source = adapter if adapter and (pathlib.Path(adapter) / "tokenizer_config.json").is_file() else path
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_for_training(
    base_model: str,
    lora: LoraSettings,
    *,
    backend: str = "auto",
    load_in_4bit: bool = True,
    max_seq_length: int = 2048,
    adapter: str | None = None,
    allow_unsloth: bool = True,
) -> LoadedModel:
    """Base model + LoRA (new, or ``adapter`` loaded trainable) on the chosen backend."""
    backend = choose_backend(backend, load_in_4bit=load_in_4bit, adapter=adapter, allow_unsloth=allow_unsloth)
    path, table_targets = _resolve(base_model)
    targets = tuple(lora.target_modules)
    adjustments: dict[str, Any] = {}
    if targets == SEED_TARGET_MODULES and table_targets and tuple(table_targets) != targets:
        targets = tuple(
            table_targets
        )  # e.g. phi-4's fused projections: the seed's seven names do not exist there
        adjustments["target_modules"] = list(targets)
    import torch

    torch.manual_seed(lora.random_state)
    try:
        if backend == "unsloth":
            model, tokenizer = _load_unsloth(path, lora, targets, max_seq_length, load_in_4bit)
        else:
            model, tokenizer = _load_peft(path, lora, targets, backend, adapter, adjustments)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        raise TrainingError(
            f"could not load '{base_model}' for training on backend {backend}: {exc}"
        ) from exc
    device = "cuda" if backend != "peft" or cuda_available() else "cpu"
    if backend == "peft" and load_in_4bit:
        adjustments["load_in_4bit"] = False
    return LoadedModel(model, tokenizer, backend, device, path, targets, adjustments)


def _load_unsloth(path, lora: LoraSettings, targets, max_seq_length, load_in_4bit):
    import unsloth  # noqa: F401  (must patch transformers before the trainer is built)
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=path, max_seq_length=max_seq_length, dtype=None, load_in_4bit=load_in_4bit
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=lora.r,
        target_modules=list(targets),
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        bias=lora.bias,
        use_gradient_checkpointing="unsloth" if lora.use_gradient_checkpointing else False,
        random_state=lora.random_state,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _load_peft(path, lora: LoraSettings, targets, backend, adapter, adjustments):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"attn_implementation": "sdpa"}
    if backend == "peft-4bit":
        from transformers import BitsAndBytesConfig

        kwargs.update(
            quantization_config=BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            ),
            dtype=torch.bfloat16,
            device_map={"": 0},
        )
    elif cuda_available():
        kwargs.update(dtype=torch.bfloat16, device_map={"": 0})
    else:
        kwargs.update(dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if backend == "peft-4bit":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=lora.use_gradient_checkpointing
        )
    if adapter is not None:
        adapter_dir = pathlib.Path(adapter)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise TrainingError(
                f"{adapter_dir} is not a LoRA adapter directory (no adapter_config.json); expected "
                f"a checkpoint written by `qmind train sft`"
            )
        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
        adjustments["continued_from"] = str(adapter_dir.resolve())
    else:
        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.lora_alpha,
            lora_dropout=lora.lora_dropout,
            target_modules=list(targets),
            bias=lora.bias,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
    return model, _tokenizer(path, adapter)
