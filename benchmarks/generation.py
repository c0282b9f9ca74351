"""Candidate-generation throughput of the transformers backend, side by side, beside the HBM roofline.

A Qwen2.5-Coder-7B-shaped model (hidden 3584, 28 layers, 28 query / 4 KV heads, intermediate 18944, vocab 152064)
with random weights in bf16 on CUDA, a rank-32 LoRA on the seven projections, prompts of ~320 tokens and exactly 256
new tokens per row (end-of-turn suppressed). Measured in one run:

  (a) three separate ``generate`` calls, one per temperature (plain transformers sampling, one row each);
  (b) the backend's batched paths at 1 prompt x 3 temperatures and 16 prompts x 3:
      generate    - one ``model.generate`` call with the per-row sampler (decoding.generate_ids), eager;
      graph       - static KV cache, decode step captured as a CUDA graph (graph_decoder.GraphDecoder);
      graph+compile - the same step torch.compile'd before capture (``--compile``);
      each with the LoRA unmerged and merged into the weights.

Roofline: bytes one decode step must read (all weights + LoRA factors when unmerged + the KV cache of every row at
its average length) over the HBM bandwidth (3.35 TB/s for an H100 SXM, 4.8 TB/s for an H200; ``--bandwidth``).
Tokens/s counts new tokens over the whole call, prefill included.

The LoRA is peft's when peft is installed, else a minimal LoRA linear defined here (benchmark only), which computes
the same x A^T B^T * alpha/r; the output says which. ``--tiny`` runs a small config on CPU to check the script.

    python benchmarks/generation.py                 # on a CUDA machine
    python benchmarks/generation.py --tiny --json   # anywhere
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import argparse
import importlib.util
import json
import platform
import time

import torch
from torch import nn


from workers.generation.decoding import SamplingSpec, generate_ids
from workers.generation.graph_decoder import GraphDecoder

QWEN_7B = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
           "tie_word_embeddings": False}
TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 2048, "max_position_embeddings": 4096, "tie_word_embeddings": False}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TEMPERATURES = (0.5, 0.7, 0.9)


class MinimalLoRALinear(nn.Module):
    """y = W x + (alpha / r) B A x: what peft's LoRA Linear computes in eval mode (benchmark stand-in)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base, self.scale = base, alpha / rank
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.randn(rank, base.in_features, device=dev, dtype=dt) / base.in_features**0.5)
        self.lora_B = nn.Parameter(torch.randn(base.out_features, rank, device=dev, dtype=dt) * 0.01)

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale

    def merged(self) -> nn.Linear:
        self.base.weight.data += (self.lora_B @ self.lora_A) * self.scale
        return self.base


def attach_lora(model, rank: int, impl: str):
    """(model with a LoRA on the seven projections, implementation used, LoRA parameter bytes)."""
    if impl == "auto":
        impl = "peft" if importlib.util.find_spec("peft") else "minimal"
    if impl == "peft":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=list(TARGETS),
                            init_lora_weights=False, task_type="CAUSAL_LM")
        model = get_peft_model(model, config).eval()
        lora = [p for n, p in model.named_parameters() if "lora_" in n]
    else:
        lora = []
        for name, module in list(model.named_modules()):
            for child_name, child in list(module.named_children()):
                if child_name in TARGETS and isinstance(child, nn.Linear):
                    wrapped = MinimalLoRALinear(child, rank, 2 * rank)
                    setattr(module, child_name, wrapped)
                    lora += [wrapped.lora_A, wrapped.lora_B]
    return model, impl, sum(p.numel() * p.element_size() for p in lora)


def merge_lora(model, impl: str):
    if impl == "peft":
        return model.merge_and_unload()
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, MinimalLoRALinear):
                setattr(module, child_name, child.merged())
    return model


def build_model(config_values: dict, device: torch.device, dtype: torch.dtype, seed: int):
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(seed)
    config = Qwen2Config(**config_values)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def prompts(num: int, length: int, vocab: int, *, spread: int, seed: int, pad_id: int = 0):
    """Left-padded random prompts of length in [length - spread, length + spread]."""
    g = torch.Generator().manual_seed(seed)
    lengths = [length] if num == 1 else [length + int(x) for x in torch.randint(-spread, spread + 1, (num,),
                                                                                 generator=g)]
    width = max(lengths)
    ids = torch.full((num, width), pad_id, dtype=torch.long)
    mask = torch.zeros((num, width), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, width - n:] = torch.randint(1, vocab, (n,), generator=g)
        mask[i, width - n:] = 1
    return ids, mask


def roofline(*, weight_bytes, lora_bytes, config, rows, mean_prompt, new_tokens, kv_elem, bandwidth):
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    per_token = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim * kv_elem
    kv = rows * per_token * (mean_prompt + (new_tokens - 1) / 2)
    step_bytes = weight_bytes + lora_bytes + kv
    return rows * bandwidth / step_bytes, step_bytes


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_engines(device: torch.device, seed: int) -> dict:
    """The graph engine (CUDA graph on CUDA) must decode exactly what one generate call decodes (tiny model, fp32)."""
    model = build_model(TINY, device, torch.float32, seed)
    model, impl, _ = attach_lora(model, 8, "auto")
    ids, mask = prompts(2, 40, TINY["vocab_size"], spread=8, seed=seed)
    ids, mask = ids.repeat_interleave(3, 0), mask.repeat_interleave(3, 0)
    spec = SamplingSpec(temperatures=[0.0, 0.7, 1.5] * 2, seeds=list(range(6)), max_new_tokens=48, stop=())
    eos = [TINY["vocab_size"] - 1]
    reference, _ = generate_ids(model, ids, mask, spec, eos_ids=eos, pad_token_id=0)
    decoder = GraphDecoder(model, None)
    first, stats = decoder.decode_ids(ids, mask, spec, eos_ids=eos)
    again, _ = decoder.decode_ids(ids, mask, spec, eos_ids=eos)  # replays the captured graph
    def cut(rows):
        return [r[: next((i for i, t in enumerate(r) if t in eos), len(r))] for r in rows]
    eager, _ = GraphDecoder(model, None, cuda_graph=False).decode_ids(ids, mask, spec, eos_ids=eos)
    sdpa, _ = GraphDecoder(model, None, cuda_graph=False, gqa_attention=False).decode_ids(ids, mask, spec,
                                                                                          eos_ids=eos)
    diverged = [next((i for i, (a, b) in enumerate(zip(x, y)) if a != b), None) for x, y in zip(first, reference)]
    return {"graph_equals_generate": cut(first) == cut(reference), "graph_replay_repeats": first == again,
            "graph_equals_eager_steps": first == eager, "gqa_equals_sdpa_attention": cut(eager) == cut(sdpa),
            "engine": stats.engine, "lora": impl, "first_difference_vs_generate": diverged}


def profile(decoder, ids, mask, spec, eos, title) -> None:
    """Top kernels of 8 eager decode steps (no CUDA graph), to see where a step's time goes."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    short = SamplingSpec(**{**spec.__dict__, "max_new_tokens": 9, "min_new_tokens": 9})
    graph = decoder.cuda_graph
    decoder.cuda_graph = False
    decoder.decode_ids(ids, mask, short, eos_ids=eos)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with torch_profile(activities=activities) as prof:
        decoder.decode_ids(ids, mask, short, eos_ids=eos)
    decoder.cuda_graph = graph
    decoder._key = None  # shapes of the real run differ: allocate afresh
    key = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    print(f"--- profile: {title} (prefill + 8 eager steps)")
    print(prof.key_averages().table(sort_by=key, row_limit=14, max_name_column_width=60), flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small config on CPU (checks the script)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--prompt-tokens", type=int, default=None, help="tokens per prompt (320; tiny 32)")
    parser.add_argument("--new-tokens", type=int, default=None, help="new tokens per row (256; tiny 16)")
    parser.add_argument("--prompts", type=int, nargs="+", default=[1, 16], help="prompts per batch (x3 rows)")
    parser.add_argument("--rank", type=int, default=32, help="LoRA rank (alpha = 2 rank)")
    parser.add_argument("--lora", choices=["auto", "peft", "minimal"], default="auto")
    parser.add_argument("--engines", nargs="+", default=["separate", "generate", "graph"],
                        help="separate (a), generate, graph, graph-sdpa, graph+compile")
    parser.add_argument("--compile", action="store_true", help="also run graph+compile")
    parser.add_argument("--lora-modes", nargs="+", default=["unmerged", "merged"], choices=["unmerged", "merged"])
    parser.add_argument("--profile", action="store_true", help="print the top GPU kernels of a few eager steps")
    parser.add_argument("--bandwidth", type=float, default=None, help="HBM bytes/s (default by GPU name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="first check graph == generate on a tiny fp32 model")
    return parser


class _Results(list):
    """Measured rows, each printed as it comes, with its roofline (bytes one decode step must read)."""

    def __init__(self, *, weight_bytes, lora_bytes, config, new_tokens, dtype, bandwidth) -> None:
        super().__init__()
        self.weight_bytes, self.lora_bytes, self.config = weight_bytes, lora_bytes, config
        self.new_tokens, self.dtype, self.bandwidth = new_tokens, dtype, bandwidth

    def record(self, engine, merged, rows, seconds, mean_prompt, first_call=None) -> None:
        tokens = rows * self.new_tokens
        roof, step_bytes = roofline(weight_bytes=self.weight_bytes, lora_bytes=0 if merged else self.lora_bytes,
                                    config=self.config, rows=rows, mean_prompt=mean_prompt,
                                    new_tokens=self.new_tokens, kv_elem=torch.finfo(self.dtype).bits // 8,
                                    bandwidth=self.bandwidth)
        res = {"engine": engine, "lora": "merged" if merged else "unmerged", "rows": rows, "tokens": tokens,
               "seconds": round(seconds, 3), "tok_per_s": round(tokens / seconds, 1),
               "roofline_tok_per_s": round(roof, 1), "pct_roofline": round(100 * tokens / seconds / roof, 1),
               "step_bytes_GB": round(step_bytes / 1e9, 3),
               "first_call_s": None if first_call is None else round(first_call, 2)}
        self.append(res)
        print(f"{engine:14s} {res['lora']:9s} rows={rows:3d}  {res['tok_per_s']:9.1f} tok/s   roofline "
              f"{res['roofline_tok_per_s']:9.1f} tok/s   {res['pct_roofline']:5.1f}%   ({seconds:.2f}s"
              + (f"; first call {first_call:.1f}s)" if first_call is not None else ")"), flush=True)


def _separate(model, device, config, prompt_tokens, new_tokens, eos, seed) -> float:
    """(a): three plain ``generate`` calls, one per temperature, one row each; seconds (after a warm-up)."""
    ids, mask = prompts(1, prompt_tokens, config["vocab_size"], spread=0, seed=seed)
    ids, mask = ids.to(device), mask.to(device)
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=8, min_new_tokens=8,
                       pad_token_id=0, eos_token_id=eos)
        sync(device)
        start = time.perf_counter()
        for t in TEMPERATURES:
            model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=t, top_k=50,
                           top_p=0.9, repetition_penalty=1.1, max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, pad_token_id=0, eos_token_id=eos)
        sync(device)
    return time.perf_counter() - start


def _batched(model, engine, ids, mask, spec, eos, *, cuda, profile_title=None):
    """(stats, seconds of the first call or None) of one batched engine; None for an engine not run here."""
    if engine == "generate":
        warm = SamplingSpec(**{**spec.__dict__, "max_new_tokens": 8, "min_new_tokens": 8})
        generate_ids(model, ids, mask, warm, eos_ids=eos, pad_token_id=0)
        return generate_ids(model, ids, mask, spec, eos_ids=eos, pad_token_id=0)[1], None
    if engine not in ("graph", "graph-sdpa", "graph+compile") or (not cuda and engine == "graph+compile"):
        return None
    decoder = GraphDecoder(model, None, compile=engine == "graph+compile", gqa_attention=engine != "graph-sdpa")
    if profile_title:
        profile(decoder, ids, mask, spec, eos, profile_title)
    t_first = time.perf_counter()
    decoder.decode_ids(ids, mask, spec, eos_ids=eos)  # capture (and compile)
    first = time.perf_counter() - t_first
    _, stats = decoder.decode_ids(ids, mask, spec, eos_ids=eos)
    del decoder
    if cuda:
        torch.cuda.empty_cache()
    return stats, first


def main() -> None:
    args = _parser().parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    config = TINY if args.tiny else QWEN_7B
    prompt_tokens = args.prompt_tokens or (32 if args.tiny else 320)
    new_tokens = args.new_tokens or (16 if args.tiny else 256)
    gpu = torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()})"
    bandwidth = args.bandwidth or (4.8e12 if "H200" in gpu else 3.35e12)
    engines = list(args.engines) + (["graph+compile"] if args.compile else [])
    import transformers

    header = {"device": gpu, "torch": torch.__version__, "transformers": transformers.__version__,
              "bandwidth_TBps": bandwidth / 1e12, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens,
              "config": "tiny" if args.tiny else "Qwen2.5-7B-shaped", "dtype": str(dtype).replace("torch.", "")}
    print(json.dumps(header), flush=True)
    if args.check:
        check = check_engines(device, args.seed)
        header["check"] = check
        print(json.dumps({"check": check}), flush=True)

    t0 = time.perf_counter()
    model = build_model(config, device, dtype, args.seed)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    model, impl, lora_bytes = attach_lora(model, args.rank, args.lora)
    sync(device)
    print(f"model built in {time.perf_counter() - t0:.1f}s: {weight_bytes / 1e9:.2f} GB weights, LoRA r={args.rank} "
          f"({impl}) {lora_bytes / 1e6:.1f} MB", flush=True)
    results = _Results(weight_bytes=weight_bytes, lora_bytes=lora_bytes, config=config, new_tokens=new_tokens,
                       dtype=dtype, bandwidth=bandwidth)
    eos = [config["vocab_size"] - 1]
    for merged in sorted({m == "merged" for m in args.lora_modes}):
        if merged:
            model = merge_lora(model, impl)
            sync(device)
        if "separate" in engines and not merged:  # (a): the reference measurement, plain generate per temperature
            seconds = _separate(model, device, config, prompt_tokens, new_tokens, eos, args.seed)
            results.record("separate x3", merged, 3, seconds, prompt_tokens)
        for num in args.prompts:
            rows = 3 * num
            ids, mask = prompts(num, prompt_tokens, config["vocab_size"], spread=16, seed=args.seed + num)
            ids, mask = ids.repeat_interleave(3, 0), mask.repeat_interleave(3, 0)
            spec = SamplingSpec(temperatures=[TEMPERATURES[i % 3] for i in range(rows)], seeds=list(range(rows)),
                                top_k=50, top_p=0.9, repetition_penalty=1.1, max_new_tokens=new_tokens,
                                min_new_tokens=new_tokens, stop=())
            for engine in engines:
                title = f"{engine} rows={rows} merged={merged}" if args.profile else None
                measured = _batched(model, engine, ids, mask, spec, eos, cuda=cuda, profile_title=title)
                if measured is not None:
                    stats, first = measured
                    assert stats.steps == new_tokens, stats
                    results.record(engine, merged, rows, stats.seconds, float(mask.sum()) / rows, first)
    summary = {**header, "lora_impl": impl, "lora_rank": args.rank, "weight_GB": round(weight_bytes / 1e9, 3),
               "lora_MB": round(lora_bytes / 1e6, 2), "results": list(results)}
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
