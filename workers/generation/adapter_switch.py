"""Switch the LoRA adapter of a loaded model in place, without loading the base model again.

Two shapes of loaded model, two ways:

- merged weights (``merge_lora``, the default, and what the CUDA-graph decoder replays): the old adapter's weight
  delta ``B @ A * scaling`` is replaced by the new one: both adapters' LoRA layers are injected (peft), each weight
  gets ``delta(new) - delta(old)`` once, in place, through peft's own ``get_delta_weight`` (so rank_pattern /
  alpha_pattern / rsLoRA / fan_in_fan_out count as peft counts them), and the LoRA layers are removed again. The
  weight tensors keep their storage, so a captured CUDA graph stays valid. The arithmetic runs in float32 and is
  rounded once to the weight dtype per switch: v1 -> v2 -> v1 returns the v1 weights within one rounding of the
  dtype per switch (float32: ~1e-7 relative; float16/bfloat16: one unit in the last place, only where the rounding
  crosses). DoRA adapters cannot be re-merged this way (their merge is not additive) and are refused.
- a separate adapter (``merge_lora=False``, a ``PeftModel``): peft's ``load_adapter`` + ``set_adapter`` +
  ``delete_adapter``.
"""

from __future__ import annotations

import json
import pathlib

from .errors import GenerationError

_OLD, _NEW = "qmind_old", "qmind_new"


def _refuse_dora(adapter_path: str) -> None:
    config = json.loads((pathlib.Path(adapter_path) / "adapter_config.json").read_text())
    if config.get("use_dora"):
        raise GenerationError(f"{adapter_path} is a DoRA adapter: its merge is not additive, so it cannot be switched "
                              f"into merged weights; load it with merge_lora=False or restart the worker with it")


def _wrap(model, old: str | None, new: str | None):
    """``model`` with the LoRA layers of ``old`` (as "old") and ``new`` (as "new") injected, nothing merged."""
    from peft import PeftModel

    first, name = (old, _OLD) if old else (new, _NEW)
    try:
        wrapped = PeftModel.from_pretrained(model, first, adapter_name=name)
        if old and new:
            wrapped.load_adapter(new, adapter_name=_NEW)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise GenerationError(f"could not apply adapter {new or old}: {exc}. Expected a LoRA trained on this base "
                              f"model") from exc
    return wrapped


def switch_merged(model, old: str | None, new: str | None):
    """Merged weights of base + ``old`` become base + ``new`` (either may be None: the base alone), in place.

    ``model`` is a plain transformers model (no LoRA layers); the same object is returned, still plain. Each
    weight is touched once, by ``delta(new) - delta(old)`` computed in float32 and rounded once.
    """
    import torch
    from peft.tuners.lora import LoraLayer

    for path in (old, new):
        if path:
            _refuse_dora(path)
    if not old and not new:
        return model
    wrapped = _wrap(model, old, new)
    with torch.no_grad():
        for layer in wrapped.modules():
            if not isinstance(layer, LoraLayer):
                continue
            weight = layer.get_base_layer().weight
            delta = None
            for name, sign in ((_NEW, 1.0), (_OLD, -1.0)):
                if name in layer.lora_A:
                    part = layer.get_delta_weight(name).to(device=weight.device, dtype=torch.float32)
                    delta = part.mul_(sign) if delta is None else delta.add_(part, alpha=sign)
            if delta is None:
                continue
            if weight.dtype == torch.float32:
                weight.add_(delta)
            else:
                weight.copy_(weight.float().add_(delta))
    return wrapped.unload()  # the LoRA layers go; the base layers (with the edited weights) stay


def switch_separate(model, old: str | None, new: str | None, *, name: str):
    """A model with its adapter kept separate (``PeftModel``) or none: load ``new`` under ``name`` and make it the
    active adapter, drop ``old``. Returns the model (a different object when an adapter appears or goes)."""
    from peft import PeftModel

    try:
        if new is None:
            return model.unload() if old else model
        if not old:
            return PeftModel.from_pretrained(model, new, adapter_name=name)
        previous = model.active_adapter
        model.load_adapter(new, adapter_name=name)
        model.set_adapter(name)
        model.delete_adapter(previous)
        return model
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise GenerationError(f"could not switch the adapter from {old} to {new}: {exc}") from exc
