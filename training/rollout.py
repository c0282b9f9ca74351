"""GRPO rollouts on the project's CUDA-graph decoder, through TRL's ``rollout_func`` extension point.

TRL's own rollouts call ``model.generate`` on the training model: a peft LoRA over a 4-bit base, decoded step by
step in eager mode, which is slow (every linear dequantises its NF4 weight each step, and the LoRA adds two small
matmuls per projection). Here the rollouts run on a second, plain copy of the base model (bf16 on CUDA, float32 on
CPU) whose weights are the policy's current weights with the LoRA merged: ``W = dequant(W_base) + scale * B A``,
recomputed whenever the trainer's global step moved (the LoRA changed), in place, so the decoder's CUDA graph stays
valid. Decoding is :class:`workers.generation.graph_decoder.GraphDecoder` (static cache, the step captured as a CUDA
graph on GPU; the same step run eagerly on CPU) with the trainer's own sampling settings: temperature, top-p,
top-k and repetition penalty, in transformers' order (penalty, temperature, top-k, top-p).

The rollout returns TRL's completion format: one completion per prompt entry it is given (TRL's sampler already
repeats each prompt ``num_generations`` times), cut after the first end-of-sequence id, as TRL's own path does.
No sampling log-probabilities are returned (``None``, as TRL's transformers path): without vLLM, TRL computes the
old log-probabilities itself when it needs them.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import torch


@dataclasses.dataclass
class RolloutStats:
    """What the rollouts of one training run cost."""

    calls: int = 0
    rows: int = 0
    completion_tokens: int = 0
    decode_seconds: float = 0.0
    """Seconds in the decoder (prefill + decode), summed over calls."""
    sync_seconds: float = 0.0
    """Seconds spent merging the policy's weights into the decoding copy."""
    syncs: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["tokens_per_s"] = self.completion_tokens / self.decode_seconds if self.decode_seconds else None
        return out


def _unwrap(model):
    """The transformers model under a peft wrapper (LoRA layers still injected)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def merged_weight(module) -> torch.Tensor:
    """A Linear-like module's effective weight: dequantised when 4-bit/8-bit, plus every active LoRA's delta."""
    from peft.tuners.lora import LoraLayer
    from peft.utils.integrations import dequantize_module_weight

    if isinstance(module, LoraLayer):
        weight = dequantize_module_weight(module.get_base_layer()).detach()
        deltas = [module.get_delta_weight(name) for name in module.active_adapters if name in module.lora_A]
        return weight.float() + sum(d.float() for d in deltas) if deltas else weight
    return dequantize_module_weight(module).detach()


@torch.no_grad()
def sync_weights(policy, target) -> int:
    """Copy the policy's effective weights (LoRA merged, 4-bit dequantised) into the plain model ``target`` of the
    same architecture, in place. Returns how many tensors were written."""
    source = _unwrap(policy)
    written = 0
    for name, param in list(target.named_parameters()) + list(target.named_buffers()):
        module_name, _, leaf = name.rpartition(".")
        try:
            module = source.get_submodule(module_name)
        except AttributeError as exc:
            raise ValueError(f"the policy has no module '{module_name}' for the decoding copy's '{name}'") from exc
        quantized = type(getattr(module, "weight", None)).__name__ in ("Params4bit", "Int8Params")
        if leaf == "weight" and (hasattr(module, "get_base_layer") or quantized):
            value = merged_weight(module)
        else:
            holder = module.get_base_layer() if hasattr(module, "get_base_layer") else module
            value = getattr(holder, leaf)
        if value.shape != param.shape:
            raise ValueError(f"'{name}': policy has shape {tuple(value.shape)}, decoding copy {tuple(param.shape)}")
        param.copy_(value)
        written += 1
    return written


def decoding_copy(policy, device: torch.device):
    """A plain model of the policy's architecture (bf16 on CUDA, float32 on CPU), weights not yet synced."""
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(_unwrap(policy).config)
    if getattr(config, "quantization_config", None) is not None:  # the copy is plain: never quantised
        del config.quantization_config
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval().requires_grad_(False)


def cut_after_eos(ids: Sequence[int], eos: set[int]) -> list[int]:
    """A completion's ids up to and including its first end-of-sequence id (all of them when there is none)."""
    out = []
    for token in ids:
        out.append(token)
        if token in eos:
            break
    return out


class GraphRollout:
    """TRL ``rollout_func``: ``rollout(prompts, trainer) -> {"prompt_ids", "completion_ids", "logprobs"}``."""

    def __init__(self, *, compile: bool = False, seed: int = 0) -> None:
        self.compile, self.seed = compile, seed
        self.model = self.decoder = None
        self._synced_step: int | None = None
        self.stats = RolloutStats()

    def _prepare(self, trainer) -> None:
        policy = trainer.accelerator.unwrap_model(trainer.model)
        device = next(p.device for p in policy.parameters() if p.device.type != "meta")
        if self.model is None:
            from workers.generation.graph_decoder import GraphDecoder

            self.model = decoding_copy(policy, device)
            self.decoder = GraphDecoder(self.model, trainer.processing_class, compile=self.compile)
        if self._synced_step != trainer.state.global_step:
            start = time.perf_counter()
            sync_weights(policy, self.model)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            self.stats.sync_seconds += time.perf_counter() - start
            self.stats.syncs += 1
            self._synced_step = trainer.state.global_step

    def _prompt_ids(self, prompts: list, trainer) -> list[list[int]]:
        tokenize = getattr(trainer, "_tokenize_prompts", None)  # TRL's own: the same ids its generate path uses
        if tokenize is not None:
            return [list(ids) for ids in tokenize(prompts)[0]]
        tok = trainer.processing_class
        return [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=True) if isinstance(p, list)
                else tok(p, add_special_tokens=False)["input_ids"] for p in prompts]

    def spec(self, trainer, rows: int):
        from workers.generation.decoding import SamplingSpec

        step = trainer.state.global_step
        seeds = [hash((self.seed, int(trainer.args.seed), step, self.stats.calls, i)) & 0x7FFFFFFF
                 for i in range(rows)]
        return SamplingSpec(temperatures=[trainer.temperature] * rows, seeds=seeds,
                            top_k=int(trainer.top_k or 0), top_p=float(trainer.top_p if trainer.top_p else 1.0),
                            repetition_penalty=float(trainer.repetition_penalty or 1.0),
                            max_new_tokens=int(trainer.max_completion_length), stop=())

    def __call__(self, prompts: list, trainer) -> dict[str, Any]:
        self._prepare(trainer)
        prompt_ids = self._prompt_ids(prompts, trainer)
        pad = trainer.processing_class.pad_token_id
        width = max(len(p) for p in prompt_ids)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids])
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids])
        eos = set(trainer.eos_token_ids)
        generated, stats = self.decoder.decode_ids(input_ids, attention, self.spec(trainer, len(prompt_ids)),
                                                   eos_ids=sorted(eos))
        completions = [cut_after_eos(g, eos) for g in generated]
        self.stats.calls += 1
        self.stats.rows += len(completions)
        self.stats.completion_tokens += sum(len(c) for c in completions)
        self.stats.decode_seconds += stats.seconds
        return {"prompt_ids": prompt_ids, "completion_ids": completions, "logprobs": None}


def measure_generation(trainer, stats: RolloutStats) -> None:
    """Time every generation call of ``trainer`` (TRL's own path or a rollout_func alike) into ``stats``: seconds
    and completion tokens. Wraps the trainer instance's ``_generate`` (what both paths go through); a TRL without
    it is left alone and ``stats`` stays empty."""
    inner = getattr(trainer, "_generate", None)
    if inner is None:
        return

    def timed(prompts):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = inner(prompts)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        stats.decode_seconds += time.perf_counter() - start
        stats.calls += 1
        stats.rows += len(out[1])
        stats.completion_tokens += sum(len(ids) for ids in out[1])
        return out

    trainer._generate = timed
