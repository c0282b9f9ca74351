"""The 7B path through the product's own code on a GPU: the pieces scripts/gpu_run.sh strings together.

    python benchmarks/gpu_product.py checkpoint DIR [--adapter DIR] [--tiny]   # Qwen2.5-7B-shaped, random weights
    python benchmarks/gpu_product.py sft-data FILE [--rows N]                  # an SFT export (+ meta) to train on
    python benchmarks/gpu_product.py generate --model DIR --adapter DIR [--prompts 1 16] [--repeats 2]
    python benchmarks/gpu_product.py summary DIR                               # results.json from what ran

``checkpoint`` builds the model with Qwen2.5-Coder-7B-Instruct's shape (``benchmarks/training.py``'s QWEN7B),
random bf16 weights, and saves it with ``save_pretrained`` so ``qmind train`` / ``qmind generate`` load it through
their real loading code; the tokenizer is ``tests/tinymodel.py``'s (a byte-level BPE with Qwen's special tokens and
ChatML template: no download), so ids the tokenizer does not know decode to nothing. ``--adapter`` also writes a
rank-32 peft LoRA on the seven projections with non-zero B (an adapter that changes the outputs). ``generate``
times the transformers generator as a GPU worker's task calls it (``build_generator(...).generate(requests)``),
1 and 16 prompts x 3 temperatures, each ``--repeats`` times (the first call of a shape captures its CUDA graph).
"""

from __future__ import annotations

import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)

import argparse
import json
import pathlib
import time

import torch

from benchmarks.training import QWEN7B, TINY

PEAK_BF16 = 989e12  # dense bf16 FLOP/s of an H100/H200 SXM (datasheet), as benchmarks/training.py
SEED_EXAMPLES, SEED_EPOCHS = 10_000, 3



def build_checkpoint(out: pathlib.Path, adapter: pathlib.Path | None, *, tiny: bool) -> dict:
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from tests.tinymodel import LORA_TARGETS, build_tokenizer

    start = time.perf_counter()
    tokenizer = build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")}
    config = Qwen2Config(**(TINY if tiny else QWEN7B), bos_token_id=ids["<|endoftext|>"],
                         eos_token_id=ids["<|im_end|>"], pad_token_id=tokenizer.pad_token_id)
    device = torch.device("cuda" if torch.cuda.is_available() and not tiny else "cpu")
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16 if device.type == "cuda" else torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=list(ids.values())[::-1],
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    built = {"checkpoint": str(out), "parameters": sum(p.numel() for p in model.parameters()),
             "seconds": time.perf_counter() - start}
    if adapter is not None:
        from peft import LoraConfig, get_peft_model

        peft_model = get_peft_model(model, LoraConfig(r=32, lora_alpha=64, lora_dropout=0.05, bias="none",
                                                      target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM"))
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0.0, 0.01)
        peft_model.save_pretrained(str(adapter))
        tokenizer.save_pretrained(str(adapter))
        built["adapter"] = str(adapter)
    return built


def write_sft_data(out: pathlib.Path, rows: int) -> dict:
    """``rows`` chat rows in the SFT export's format (system + user prompt of a built-in goal, a program as the
    assistant turn), all in the train split, with the meta file the trainer checks."""
    from tests.tinymodel import SAMPLE_CODE
    from training.dataset_files import write_rows
    from training.export import assistant_content, messages_for
    from workers.evaluation.goals import get_goal
    from workers.generation.prompts import SYSTEM_PROMPT, render_prompt

    goals = ["tfim-6", "tfim-8", "heisenberg-8", "xxz-8", "xy-8", "h2", "tfim-open-6"]
    data = []
    for i in range(rows):
        goal = get_goal(goals[i % len(goals)])
        code = SAMPLE_CODE.replace("theta", f"theta_{i}").replace("gamma", f"gamma_{i % 97}")
        messages = messages_for(SYSTEM_PROMPT, render_prompt(goal, f"Iteration {i}: best error so far {1 / (i + 1):.4g}"))
        data.append({"messages": messages + [{"role": "assistant", "content": assistant_content(code)}],
                     "split": "train", "goal": goal.name})
    meta = write_rows(data, out, meta={"kind": "sft", "source": "benchmarks/gpu_product.py sft-data"})
    from tests.tinymodel import build_tokenizer

    tok = build_tokenizer()
    lengths = [len(tok.apply_chat_template(r["messages"], tokenize=True)["input_ids"]) for r in data[:50]]
    return {"file": str(out), "rows": meta["rows"], "mean_tokens_per_row": sum(lengths) / len(lengths)}


def time_generation(model: str, adapter: str | None, prompts: list[int], repeats: int, max_new_tokens: int) -> dict:
    """Latency of the transformers generator's batches as a GPU worker's task runs them."""
    from workers.evaluation.goals import get_goal
    from workers.generation import build_generator
    from workers.generation.base import PromptRequest
    from workers.generation.config import GeneratorConfig

    config = GeneratorConfig(generator="transformers", model=model, adapter=adapter, max_new_tokens=max_new_tokens)
    gen = build_generator(config)
    goals = ["tfim-8", "heisenberg-8", "xxz-8", "h2"]
    out = {"settings": config.sampling_settings(), "compile": config.compile, "merge_lora": config.merge_lora,
           "dtype": config.dtype, "runs": []}
    for n in prompts:
        requests = [PromptRequest(get_goal(goals[i % len(goals)]), f"request {i}", seed=i) for i in range(n)]
        for r in range(repeats):
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            start = time.perf_counter()
            batches = gen.generate(requests)
            seconds = time.perf_counter() - start
            tokens = sum(b.completion_tokens for b in batches)
            out["runs"].append({"prompts": n, "rows": n * len(config.temperatures), "repeat": r,
                                "seconds": seconds, "completion_tokens": tokens, "tokens_per_s": tokens / seconds,
                                "prompt_tokens": [b.prompt_tokens for b in batches],
                                "engine": batches[0].settings.get("engine")})
    out["load_seconds"] = gen.load_seconds
    return out


def _load(path: pathlib.Path):
    import yaml

    if not path.is_file():
        return None
    text = path.read_text()
    if path.suffix != ".json":
        return yaml.safe_load(text)
    lines = text.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("{")]  # library chatter may come first
    for i in reversed(starts):
        try:
            return json.loads("\n".join(lines[i:]))
        except ValueError:
            continue
    return {"unparsed": text[-2000:]}


def mean_prompt_tokens(path: pathlib.Path) -> int:
    runs = _load(path)["runs"]
    counts = [c for run in runs for c in run["prompt_tokens"]]
    return round(sum(counts) / len(counts))


def summarize(folder: pathlib.Path) -> dict:
    """One object from what the run wrote into ``folder`` (missing parts are left out)."""
    out: dict = {}
    bench, sft, data = (_load(folder / n) for n in ("bench_training.json", "sft_config.yaml", "sft_data.json"))
    n_matmul = next((r["matmul_parameters"] for r in (bench or {}).get("results", [])), None)
    if sft:
        speed = sft["throughput"]
        tps = speed["tokens_per_s"]
        out["sft"] = {"backend": sft["training_config"]["backend"], "throughput": speed,
                      "final_loss": sft.get("final_loss"), "versions": sft.get("versions")}
        if n_matmul and tps:
            out["sft"]["mfu_6n"] = tps * 6 * n_matmul / PEAK_BF16
        if data and tps:
            hours = SEED_EXAMPLES * SEED_EPOCHS * data["mean_tokens_per_row"] / tps / 3600
            out["sft"]["projection"] = {"examples": SEED_EXAMPLES, "epochs": SEED_EPOCHS,
                                        "tokens_per_example": data["mean_tokens_per_row"], "hours": hours}
    if bench:
        out["benchmark_training"] = bench
        qlora = [r for r in bench["results"] if r["mode"] == "qlora"]
        if sft and qlora and sft["throughput"]["tokens_per_s"]:
            out["sft"]["vs_benchmark_qlora"] = sft["throughput"]["tokens_per_s"] / qlora[0]["tokens_per_s"]
    grpo = {name: _load(folder / f"grpo_{name}.yaml") for name in ("trl", "graph")}
    out["grpo"] = {k: v["rollout"] for k, v in grpo.items() if v}
    if all(grpo.values()):
        rates = [grpo[k]["rollout"]["generation"]["tokens_per_s"] for k in ("graph", "trl")]
        out["grpo"]["graph_over_trl_rollout_tokens_per_s"] = rates[0] / rates[1] if all(rates) else None
    gpu = folder / "gpu.txt"
    if gpu.is_file():
        out["gpu"] = gpu.read_text().strip().splitlines()
    for name in ("checkpoint", "sft_data", "gen_product", "gen_benchmark", "gen_cli"):
        value = _load(folder / f"{name}.json")
        if value is not None:
            out[name] = value
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("checkpoint", help="build and save the 7B-shaped checkpoint (and an adapter)")
    p.add_argument("out", type=pathlib.Path)
    p.add_argument("--adapter", type=pathlib.Path, default=None)
    p.add_argument("--tiny", action="store_true", help="a 2-layer model on CPU (checks the script)")
    p = sub.add_parser("sft-data", help="write an SFT export file")
    p.add_argument("out", type=pathlib.Path)
    p.add_argument("--rows", type=int, default=400)
    p = sub.add_parser("generate", help="time the transformers generator")
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", default=None)
    p.add_argument("--prompts", type=int, nargs="+", default=[1, 16])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p = sub.add_parser("prompt-tokens", help="mean prompt tokens of a `generate` output file")
    p.add_argument("file", type=pathlib.Path)
    p = sub.add_parser("summary", help="results.json from the run's outputs in DIR")
    p.add_argument("dir", type=pathlib.Path)
    args = parser.parse_args(argv)
    if args.command == "checkpoint":
        result = build_checkpoint(args.out, args.adapter, tiny=args.tiny)
    elif args.command == "sft-data":
        result = write_sft_data(args.out, args.rows)
    elif args.command == "prompt-tokens":
        print(mean_prompt_tokens(args.file))
        return 0
    elif args.command == "generate":
        result = time_generation(args.model, args.adapter, args.prompts, args.repeats, args.max_new_tokens)
    else:
        result = summarize(args.dir)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
