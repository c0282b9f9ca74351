"""Training throughput of the seed's LoRA on a Qwen2.5-7B-shaped model (random weights), beside the compute
roofline.

    python benchmarks/training.py [--modes bf16,qlora] [--batch 2] [--seq 2048] [--steps 6] [--warmup 2]
                                  [--lora auto|peft|builtin] [--no-gradient-checkpointing] [--tiny] [--json]

The model has Qwen2.5-Coder-7B-Instruct's shape (hidden 3584, 28 layers, 28 query / 4 KV heads, intermediate
18944, vocab 152064, untied head) and random bf16 weights, so nothing is downloaded. The adapter is the seed's
LoRA (r 32, alpha 64, dropout 0.05, the seven projections); sequences are 2,048 tokens, per-device batch 2
(the seed's), with gradient checkpointing (non-reentrant). Each step is forward + backward + AdamW on the LoRA
weights.

Modes: ``bf16`` (LoRA on a bf16 base) and ``qlora`` (LoRA on an NF4 4-bit base, bitsandbytes; skipped when
bitsandbytes is absent). LoRA comes from peft when it is installed, else from the minimal built-in wrapper
below (``--lora`` forces one); the output says which.

Roofline: with gradient checkpointing, a LoRA step costs per token about 2N (forward) + 2N (recomputed
forward) + 2N (backward through the activations; the frozen base needs no weight gradients) = 6N FLOPs, N =
the parameters that multiply (every Linear, the LM head included; not the embedding lookup). Attention scores
add about 8 L S d per token (causal, forward + recompute + 2x backward), printed separately. Peak: 989 TFLOP/s
(H100 SXM dense bf16). MFU = achieved FLOP/s / peak, counting 6N (+ attention) per token. Peak memory is
``torch.cuda.max_memory_allocated`` over the training steps (the counter is reset after the model is built).

``--tiny`` runs a 2-layer model on CPU (seconds) to check the script; its figures mean nothing.
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import pathlib


import argparse
import importlib.util
import json
import math
import time

import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parents[1]

from training.sft_config import LoraSettings

PEAK_BF16 = 989e12
QWEN7B = dict(
    hidden_size=3584,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    intermediate_size=18944,
    vocab_size=152064,
    max_position_embeddings=32768,
    rope_theta=1e6,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)
TINY = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=1000,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
)


class LoRALinear(nn.Module):
    """y = W x + (alpha / r) B A dropout(x), W frozen; A Kaiming-uniform, B zero (peft's defaults), fp32
    LoRA."""

    def __init__(self, base: nn.Module, r: int, alpha: int, dropout: float) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        device = next(base.parameters()).device
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=device, dtype=torch.float32))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=device, dtype=torch.float32))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)
        self.scaling = alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = (self.dropout(x).to(self.lora_A.dtype) @ self.lora_A.t()) @ self.lora_B.t()
        return self.base(x) + (update * self.scaling).to(x.dtype)


def add_builtin_lora(model: nn.Module, lora: LoraSettings) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if name.rsplit(".", 1)[-1] in lora.target_modules and hasattr(module, "in_features")
    ]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(
            model.get_submodule(parent_name),
            child,
            LoRALinear(module, lora.r, lora.lora_alpha, lora.lora_dropout),
        )
    return model


def add_lora(model: nn.Module, lora: LoraSettings, impl: str) -> tuple[nn.Module, str]:
    if impl == "peft" or (impl == "auto" and importlib.util.find_spec("peft")):
        import peft
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.lora_alpha,
            lora_dropout=lora.lora_dropout,
            target_modules=list(lora.target_modules),
            bias=lora.bias,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, config), f"peft {peft.__version__}"
    return add_builtin_lora(
        model, lora
    ), "built-in LoRA wrapper (peft not installed)" if impl == "auto" else "built-in LoRA wrapper"


def quantize_4bit(model: nn.Module, device: torch.device) -> None:
    """Swap every decoder Linear for a bitsandbytes NF4 Linear4bit holding the same (random) weights."""
    import bitsandbytes as bnb

    for name, module in list(model.model.layers.named_modules()):
        if not isinstance(module, nn.Linear):
            continue
        q = bnb.nn.Linear4bit(
            module.in_features,
            module.out_features,
            bias=module.bias is not None,
            compute_dtype=torch.bfloat16,
            quant_type="nf4",
        )
        q.weight = bnb.nn.Params4bit(module.weight.data.to("cpu"), requires_grad=False, quant_type="nf4")
        if module.bias is not None:
            q.bias = nn.Parameter(module.bias.data, requires_grad=False)
        parent_name, _, child = name.rpartition(".")
        setattr(model.model.layers.get_submodule(parent_name), child, q.to(device))
    torch.cuda.empty_cache()


def build_model(shape: dict, device: torch.device, dtype: torch.dtype):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**shape, attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model, config


def matmul_parameters(model: nn.Module) -> int:
    """Parameters of every Linear (LM head included), LoRA excluded: the N of 6N."""
    total = 0
    for name, module in model.named_modules():
        if "lora" in name.lower():
            continue
        weight = getattr(module, "weight", None)
        if weight is not None and hasattr(module, "in_features") and not isinstance(module, nn.Embedding):
            total += module.in_features * module.out_features
    return total


def _train_steps(model, trainable, optimizer, ids, device, *, warmup: int, steps: int):
    """``warmup`` unmeasured then ``steps`` measured training steps: (seconds per step, losses)."""
    times, losses = [], []
    for step in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - t)
            losses.append(float(loss.detach()))
    return times, losses


def run_mode(mode: str, args, device: torch.device) -> dict:
    shape = TINY if args.tiny else QWEN7B
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    started = time.perf_counter()
    model, config = build_model(shape, device, dtype)
    n_matmul = matmul_parameters(model)
    n_total = sum(p.numel() for p in model.parameters())
    if mode == "qlora":
        quantize_4bit(model, device)
    lora = LoraSettings()
    model, lora_impl = add_lora(model, lora, args.lora)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-4, weight_decay=0.01, fused=device.type == "cuda")
    build_s = time.perf_counter() - started
    if device.type == "cuda":  # measure training alone (building the bf16 model before quantising peaks higher)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        resident = torch.cuda.memory_allocated()
    gen = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), generator=gen).to(device)
    times, losses = _train_steps(model, trainable, optimizer, ids, device, warmup=args.warmup, steps=args.steps)
    tokens = args.batch * args.seq
    step_s = sum(times) / len(times)
    tokens_per_s = tokens / step_s
    linear_flops = 6 * n_matmul
    attention_flops = 8 * config.num_hidden_layers * args.seq * config.hidden_size
    out = {
        "mode": mode,
        "lora": lora_impl,
        "device": device.type,
        "batch": args.batch,
        "seq": args.seq,
        "gradient_checkpointing": args.gradient_checkpointing,
        "parameters": n_total,
        "matmul_parameters": n_matmul,
        "trainable_parameters": sum(p.numel() for p in trainable),
        "lora_r": lora.r,
        "lora_alpha": lora.lora_alpha,
        "steps": args.steps,
        "step_seconds": step_s,
        "tokens_per_s": tokens_per_s,
        "flops_per_token_6n": linear_flops,
        "flops_per_token_attention": attention_flops,
        "roofline_tokens_per_s_6n": PEAK_BF16 / linear_flops,
        "roofline_tokens_per_s_6n_attention": PEAK_BF16 / (linear_flops + attention_flops),
        "mfu_6n": tokens_per_s * linear_flops / PEAK_BF16,
        "mfu_6n_attention": tokens_per_s * (linear_flops + attention_flops) / PEAK_BF16,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "model_memory_gib": resident / 2**30 if device.type == "cuda" else None,
        "build_seconds": build_s,
        "losses": losses,
    }
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="bf16,qlora", help="bf16, qlora, or both (comma-separated)")
    parser.add_argument("--batch", type=int, default=2, help="sequences per step (seed: 2)")
    parser.add_argument(
        "--seq", type=int, default=None, help="tokens per sequence (default 2048; --tiny: 128)"
    )
    parser.add_argument("--steps", type=int, default=6, help="measured steps")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured steps first")
    parser.add_argument(
        "--lora", choices=("auto", "peft", "builtin"), default="auto", help="LoRA implementation"
    )
    parser.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false")
    parser.add_argument("--tiny", action="store_true", help="2-layer model on CPU (checks the script)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    args.seq = args.seq or (128 if args.tiny else 2048)
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.tiny:
        parser.error(
            "no CUDA device: the 7B-shaped benchmark needs a GPU (use --tiny to check the script on CPU)"
        )
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "none (CPU)"
    results, skipped = [], {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if mode == "qlora" and (device.type != "cuda" or not importlib.util.find_spec("bitsandbytes")):
            skipped[mode] = "bitsandbytes is not installed" if device.type == "cuda" else "4-bit needs CUDA"
            continue
        if mode not in ("bf16", "qlora"):
            parser.error(f"unknown mode {mode!r}; expected bf16 or qlora")
        results.append(run_mode(mode, args, device))
    import transformers

    report = {
        "gpu": gpu,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peak_tflops_bf16": PEAK_BF16 / 1e12,
        "results": results,
        "skipped": skipped,
        "shape": "tiny (2 layers)" if args.tiny else "Qwen2.5-7B (28 layers, hidden 3584)",
    }
    if args.json:
        print(json.dumps(report))
        return 0
    _print_report(report)
    return 0


def _print_report(report: dict) -> None:
    """The report as text, one block per mode."""
    print(
        f"GPU: {report['gpu']} | torch {report['torch']} | transformers {report['transformers']} | "
        f"{report['shape']}"
    )
    for r in report["results"]:
        mem = (
            f"{r['peak_memory_gib']:.1f} GiB (weights + LoRA + optimizer before the first step: "
            f"{r['model_memory_gib']:.1f} GiB)"
            if r["peak_memory_gib"] is not None
            else "n/a (CPU)"
        )
        print(
            f"\n[{r['mode']}] {r['lora']}; batch {r['batch']} x {r['seq']} tokens; gradient checkpointing "
            f"{'on' if r['gradient_checkpointing'] else 'off'}"
        )
        print(
            f"  parameters {r['parameters'] / 1e9:.2f} B (matmul N = {r['matmul_parameters'] / 1e9:.2f} B), "
            f"trainable LoRA {r['trainable_parameters'] / 1e6:.1f} M"
        )
        print(f"  step {r['step_seconds']:.3f} s -> {r['tokens_per_s']:,.0f} tokens/s; peak memory {mem}")
        print(
            f"  roofline (6N = {r['flops_per_token_6n'] / 1e9:.1f} GFLOP/token at {PEAK_BF16 / 1e12:.0f} "
            f"TFLOP/s): {r['roofline_tokens_per_s_6n']:,.0f} tokens/s -> MFU {r['mfu_6n']:.1%}"
        )
        print(
            f"  with attention (+{r['flops_per_token_attention'] / 1e9:.2f} GFLOP/token): "
            f"{r['roofline_tokens_per_s_6n_attention']:,.0f} tokens/s -> MFU {r['mfu_6n_attention']:.1%}"
        )
    for mode, why in report["skipped"].items():
        print(f"\n[{mode}] skipped: {why}")


if __name__ == "__main__":
    raise SystemExit(main())
