"""What switching the LoRA adapter of a loaded generator costs, against loading the generator cold.

A Qwen2-architecture model with random weights (default: the Qwen2.5-0.5B body, hidden 896, 24 layers, 14 query /
2 KV heads, intermediate 4864; ``--shape 7b``: the Qwen2.5-Coder-7B body) and a small vocabulary, saved with
``save_pretrained``; two random rank-32 LoRA adapters on the seven projections. Measured through the product's
transformers backend (``workers.generation.hf_backend.TransformersGenerator``):

  cold      - build the generator and ``load()`` it with adapter v1 (tokenizer, base weights from the page cache,
              LoRA merged), as a worker does on its first task or after a restart;
  switch    - ``use_adapter(v2)`` / ``use_adapter(v1)`` on the loaded generator, repeated: the merged-weight path
              (subtract the old delta, add the new one, in place) and, with ``merge_lora=False``, peft's
              load_adapter + set_adapter + delete_adapter;
  drift     - largest absolute difference between the weights after v1 -> v2 -> ... -> v2 switches and a cold load
              of v2.

    python benchmarks/adapter_switch.py --json                     # CPU, 0.5B-shaped
    python benchmarks/adapter_switch.py --shape 7b --device cuda   # on a GPU
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import argparse
import json
import pathlib
import statistics
import tempfile
import time

import torch

SHAPES = {
    "0.5b": {"hidden_size": 896, "layers": 24, "heads": 14, "kv_heads": 2, "intermediate_size": 4864},
    "7b": {"hidden_size": 3584, "layers": 28, "heads": 28, "kv_heads": 4, "intermediate_size": 18944},
    "tiny": {"hidden_size": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate_size": 128},
}


def build(root: pathlib.Path, shape: str, rank: int, dtype: torch.dtype) -> tuple[pathlib.Path, list[pathlib.Path]]:
    from tests.tinymodel import add_lora, build_model, build_tokenizer

    tokenizer = build_tokenizer()
    model = build_model(tokenizer, **SHAPES[shape]).to(dtype)
    model.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    adapters = []
    for seed in (1, 2):
        peft_model = add_lora(model, r=rank, alpha=2 * rank, seed=seed)
        peft_model.save_pretrained(root / f"v{seed}")
        model = peft_model.unload()
        adapters.append(root / f"v{seed}")
    return root / "base", adapters


def generator(base, adapter, args, **overrides):
    from workers.generation import build_generator
    from workers.generation.config import GeneratorConfig

    return build_generator(GeneratorConfig(generator="transformers", model=str(base), adapter=str(adapter),
                                           device=args.device, dtype=args.dtype, static_cache=False, **overrides))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(base, adapters, args, *, merge: bool) -> dict:
    start = time.perf_counter()
    gen = generator(base, adapters[0], args, merge_lora=merge)
    gen.load()
    sync(args.device)
    cold = time.perf_counter() - start
    switches = []
    for i in range(args.repeats):
        gen.use_adapter(str(adapters[(i + 1) % 2]))
        sync(args.device)
        switches.append(gen.switch_seconds)
    out = {"merge_lora": merge, "cold_load_s": round(cold, 3), "switch_s_median": round(statistics.median(switches), 4),
           "switch_s_all": [round(s, 4) for s in switches]}
    if merge:
        final = adapters[args.repeats % 2]
        reference = generator(base, final, args)
        reference.load()
        out["drift_max_abs"] = max(float((a.float() - b.float()).abs().max()) for a, b in
                                   zip(gen.model.state_dict().values(), reference.model.state_dict().values()))
        out["switches_before_drift"] = args.repeats
        del reference
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="0.5b")
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--repeats", type=int, default=6, help="switches v1 -> v2 -> v1 ... on one generator")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        base, adapters = build(pathlib.Path(tmp), args.shape, args.rank, getattr(torch, args.dtype))
        rows = [measure(base, adapters, args, merge=True), measure(base, adapters, args, merge=False)]
    result = {"shape": args.shape, **SHAPES[args.shape], "rank": args.rank, "device": args.device,
              "dtype": args.dtype, "threads": torch.get_num_threads(), "rows": rows}
    if args.json:
        print(json.dumps(result))
        return
    for row in rows:
        print(f"merge_lora={row['merge_lora']}: cold load {row['cold_load_s']:.2f} s, switch "
              f"{row['switch_s_median']:.3f} s (median of {args.repeats})"
              + (f", drift {row['drift_max_abs']:.1e}" if "drift_max_abs" in row else ""))


if __name__ == "__main__":
    main()
