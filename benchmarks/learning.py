"""Learning curves: base model -> SFT -> GRPO round 1 -> GRPO round 2, each measured on held-out goals.

1. A store is filled by the discovery loop (eager queue path, procedural generator, the real sandboxed cascade) on
   training goals, and exported for SFT (``qmind export sft``: verified, BP-free, error <= 0.05).
2. The base (``qmind train base``, or ``--base`` a checkpoint of it) is measured, then trained with SFT (the
   seed's LoRA recipe; steps and learning rate as given), then two GRPO rounds on the held-out goals' prompts
   with the sandboxed seed reward, each round continuing the last adapter.
3. After every stage, ``qmind eval-model``'s measurement (``training.model_eval.evaluate_model``) with VQE on the
   held-out goals, ``--samples`` completions per goal at temperature 0.7: the seed's four rates, mean seed and
   shaped reward with 95 % confidence intervals (normal approximation), best energy error per goal; for GRPO the
   reward standard deviation inside groups (TRL's ``reward_std``) and the share of step time spent on rewards.

Each GRPO round is compared with the stage before it: the difference of mean held-out seed rewards and its 95 %
interval (Welch); the benchmark prints whether the interval excludes zero. Output: a table, ``learning.json`` and
``learning.png`` under ``--out``.

    python benchmarks/learning.py --train-base gpu --out benchmarks/out/learning-gpu      # one H200
    python benchmarks/learning.py --base models/base/qmind-mini --samples 64               # CPU
    python benchmarks/learning.py --tiny                                                   # checks the script
"""

from __future__ import annotations

try:
    import _path  # noqa: F401  (first: puts the repo root on sys.path, see benchmarks/_path.py)
except ModuleNotFoundError:  # a spawned judging process re-imports this script with _path's sys.path already set
    pass

import argparse
import dataclasses
import itertools
import json
import math
import os
import pathlib
import time

from training.base_config import EVAL_GOALS

STAGES = ("base", "sft", "grpo-1", "grpo-2")
TINY = {"samples": 2, "goals": "heisenberg-4", "discovery_goals": "tfim-4", "iterations": 1, "prompts": 1,
        "sft_steps": 2, "grpo_steps": 1, "max_new_tokens": 48, "num_generations": 2, "bp_samples": 20, "restarts": 1}


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", help="a `qmind train base` checkpoint (else --train-base trains one)")
    p.add_argument("--train-base", choices=("cpu", "gpu"), help="train the base first, at this size")
    p.add_argument("--base-budget", type=float, default=540.0, help="seconds for training the base")
    p.add_argument("--out", default="benchmarks/out/learning")
    p.add_argument("--samples", type=int, default=64, help="completions per held-out goal and stage")
    p.add_argument("--goals", default=",".join(EVAL_GOALS), help="held-out goals measured and trained by GRPO")
    p.add_argument("--discovery-goals", default="tfim-4,xxz-5,xy-6,tfim-open-5,xxz-open-4,h2")
    p.add_argument("--iterations", type=int, default=2, help="discovery iterations filling the SFT store")
    p.add_argument("--prompts", type=int, default=4, help="prompts per goal and discovery iteration")
    p.add_argument("--sft-steps", type=int, default=60)
    p.add_argument("--sft-lr", type=float, default=1e-3, help="the seed's 2e-4 is for 7 B weights")
    p.add_argument("--grpo-steps", type=int, default=20, help="optimizer steps per GRPO round")
    p.add_argument("--grpo-lr", type=float, default=1e-4, help="the seed's 5e-6 is for 7 B weights")
    p.add_argument("--num-generations", type=int, default=8, help="GRPO group size")
    p.add_argument("--max-new-tokens", type=int, default=768)
    p.add_argument("--bp-samples", type=int, default=60)
    p.add_argument("--restarts", type=int, default=2)
    p.add_argument("--workers", type=int, default=0, help="judging processes (0: one per core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="a few seconds' worth of everything (checks the script)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--resume", action="store_true",
                   help="continue a run stopped part-way in --out (the base, the exports and every finished stage "
                        "are kept; a stage that was cut off runs again)")
    args = p.parse_args(argv)
    if args.tiny:
        for k, v in TINY.items():
            setattr(args, k, v)
        args.train_base = args.train_base or "cpu"
    if not (args.base or args.train_base):
        p.error("give --base PATH or --train-base cpu|gpu")
    return args


def mean_ci(values: list[float]) -> dict:
    """Mean and its 95 % interval (normal approximation; zero width for fewer than two values)."""
    n = len(values)
    mean = sum(values) / n if n else float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n) if n else float("nan")
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "sd": sd, "n": n}


def difference(after: list[float], before: list[float]) -> dict:
    """after - before with its 95 % interval (Welch, normal approximation)."""
    a, b = mean_ci(after), mean_ci(before)
    half = 1.96 * math.sqrt(a["sd"] ** 2 / max(a["n"], 1) + b["sd"] ** 2 / max(b["n"], 1))
    d = a["mean"] - b["mean"]
    return {"diff": d, "lo": d - half, "hi": d + half, "excludes_zero": d - half > 0 or d + half < 0}


def eval_config(args):
    from workers.evaluation.cascade import EvaluationConfig

    return EvaluationConfig().with_knobs(bp_samples=args.bp_samples, restarts=args.restarts)


def fill_store(engine, args, root: pathlib.Path) -> dict:
    """The discovery loop on the training goals, eagerly (the real tasks and cascade, in this process)."""
    from scheduler.loop import DiscoveryConfig, DiscoveryLoop
    from workers.app import app, configure
    from workers.config import QueueConfig
    from workers.evaluation.goals import get_goal

    os.environ.update(QMIND_BP_SAMPLES=str(args.bp_samples), QMIND_VQE_RESTARTS=str(args.restarts))
    configure(app, QueueConfig(broker_url="", database_url=engine.url.render_as_string(hide_password=False)))
    goals = [get_goal(g) for g in args.discovery_goals.split(",")]
    config = DiscoveryConfig(iterations=args.iterations, prompts_per_iteration=args.prompts, seed=args.seed,
                             baselines=False,  # baseline batches never reach the SFT export
                             report_root=str(root / "reports"))
    summary = DiscoveryLoop(goals, config, engine=engine).run()
    return {"run_id": summary.run_id, "status": summary.status, "seconds": round(summary.seconds, 1)}


def evaluate_stage(base: str, adapter: str | None, args, pool, reference) -> dict:
    """eval-model's measurement with VQE on the held-out goals, reduced to the figures of the learning curve."""
    from training.model_eval import evaluate_model
    from workers.evaluation.goals import get_goal
    from workers.generation import build_generator
    from workers.generation.config import GeneratorConfig

    goals = [get_goal(g) for g in args.goals.split(",")]
    generator = build_generator(GeneratorConfig(
        generator="transformers", model=base, adapter=adapter, temperatures=(0.7,), seed=args.seed,
        max_new_tokens=args.max_new_tokens, compile=False))
    result = evaluate_model(generator, goals, prompts=args.samples * len(goals), seed=args.seed, pool=pool,
                            reference=reference, model=base, adapter=adapter)
    samples = result.samples
    best = {}
    for s in samples:
        if s["vqe_error"] is not None and s["status"] == "valid":
            best[s["goal"]] = min(best.get(s["goal"], math.inf), s["vqe_error"])
    return {
        "rates": result.rates, "completions": result.completions, "statuses": result.counts["statuses"],
        "seed_reward": mean_ci([s["seed_reward"] for s in samples]),
        "shaped_reward": mean_ci([s["shaped_reward"] for s in samples]),
        "seed_rewards": [s["seed_reward"] for s in samples],
        "best_error": {g.name: best.get(g.name) for g in goals}, "seconds": result.seconds,
    }


def sft_stage(export: pathlib.Path, base: str, args, root: pathlib.Path) -> tuple[str, dict]:
    from training.sft import train_sft
    from training.sft_config import SFTSettings

    settings = SFTSettings(base_model=base, load_in_4bit=False, max_steps=args.sft_steps, learning_rate=args.sft_lr,
                           dataloader_num_workers=0, logging_steps=5, save_steps=10_000, seed=args.seed,
                           optim=_optimizer())
    result = train_sft(export, settings=settings, checkpoints_root=root / "checkpoints",
                       trainer_root=root / "trainer", do_register=False)
    c = result.config
    return result.checkpoint, {k: c.get(k) for k in ("first_loss", "final_loss", "eval_loss", "steps", "epochs")}


def grpo_stage(export: pathlib.Path, base: str, adapter: str, args, root: pathlib.Path) -> tuple[str, dict]:
    from training.grpo import train_grpo
    from training.grpo_config import GRPOSettings

    settings = GRPOSettings(
        base_model=base, load_in_4bit=False, max_steps=args.grpo_steps, learning_rate=args.grpo_lr,
        num_generations=args.num_generations, per_device_train_batch_size=args.num_generations,
        gradient_accumulation_steps=1, max_completion_length=args.max_new_tokens, use_vllm=False,
        reward_workers=args.workers or None, seed=args.seed, save_steps=10_000, optim=_optimizer())
    result = train_grpo(export, settings=settings, adapter=adapter, checkpoints_root=root / "checkpoints",
                        trainer_root=root / "trainer", do_register=False, evaluation_config=eval_config(args))
    c = result.config
    history = c["reward_history"]
    stds = [h["reward_std"] for h in history if "reward_std" in h]
    return result.checkpoint, {
        "steps": c["steps"], "train_reward_first": history[0]["reward"] if history else None,
        "train_reward_last": c["final_reward_mean"], "group_reward_std_mean": sum(stds) / len(stds) if stds else None,
        "groups_with_spread": sum(s > 0 for s in stds), "reward_time_share": c["reward_time_share"],
    }


def _optimizer() -> str:
    """The seed's 8-bit AdamW needs bitsandbytes; a CUDA host without it trains with torch's AdamW."""
    import importlib.util

    return "adamw_8bit" if importlib.util.find_spec("bitsandbytes") else "adamw_torch"


def prepare(args, root: pathlib.Path, done: dict) -> tuple[str, dict]:
    """The base checkpoint (trained here when asked) and the SFT and GRPO exports; ``done`` holds what a stopped
    run already finished (``--resume``), which is kept, not redone."""
    from db.migrate import upgrade_database
    from db.session import make_engine
    from training.base_config import BaseSettings
    from training.base_model import train_base
    from training.export import export_grpo, export_sft
    from training.store_rows import StoreFilters

    info: dict = dict(done.get("info", {}))
    base = done.get("base") or args.base
    if args.train_base and "base" not in info:
        sized = {"batch_size": 32, "learning_rate": 1e-3, "programs_per_goal": 120} if args.train_base == "gpu" else {}
        settings = BaseSettings(size=args.train_base, time_budget_s=args.base_budget, seed=args.seed,
                                **({"programs_per_goal": 1, "max_steps": 5} if args.tiny else sized))
        result = train_base(root / "base", settings)
        base = result.path
        info["base"] = {k: result.record[k] for k in ("size", "parameters", "steps", "first_loss", "final_loss",
                                                      "device", "total_seconds")}
        _save_partial(root, base, info, {})
    if "grpo_export" in info:
        return base, info
    engine = make_engine(f"sqlite:///{root / 'store.db'}")
    upgrade_database(engine)
    info["discovery"] = fill_store(engine, args, root)
    sft = export_sft(engine, root / "sft.jsonl", seed=args.seed)
    info["sft_export"] = {"rows": sft.rows, "split": sft.meta["split"]}
    export_grpo(None, root / "grpo.jsonl", filters=StoreFilters(goals=tuple(args.goals.split(","))),
                fresh_prompts=True)
    info["grpo_export"] = str(root / "grpo.jsonl")
    _save_partial(root, base, info, {})
    return base, info


def _save_partial(root: pathlib.Path, base: str, info: dict, stages: dict) -> None:
    """What is finished so far, written atomically (a run stopped mid-write leaves the previous file)."""
    tmp = root / "learning.partial.json.tmp"
    tmp.write_text(json.dumps({"base": base, "info": info, "stages": stages}, default=str))
    tmp.replace(root / "learning.partial.json")


def _load_partial(args, root: pathlib.Path) -> dict:
    path = root / "learning.partial.json"
    if not args.resume or not path.exists():
        return {}
    done = json.loads(path.read_text())
    print(f"[learning] resuming: base {done.get('base')}, finished stages {list(done.get('stages', {}))}", flush=True)
    return done


def run(args) -> dict:
    from training.evaluate_pool import EvaluationPool
    from training.model_eval import Reference

    root = pathlib.Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    done = _load_partial(args, root)
    base, info = prepare(args, root, done)
    print(f"[learning] prepared: {json.dumps(info, default=str)} ({time.monotonic() - started:.0f} s)", flush=True)
    reference = Reference.from_export(root / "sft.jsonl")
    stages: dict[str, dict] = dict(done.get("stages", {}))
    adapter: str | None = None
    with EvaluationPool(workers=args.workers or None, seed=args.seed,
                        config=dataclasses.replace(eval_config(args), run_vqe=True)) as pool:
        for stage in STAGES:
            if stage in stages:  # finished before a --resume
                adapter = stages[stage]["adapter"]
                continue
            training: dict = {}
            if stage == "sft":
                adapter, training = sft_stage(root / "sft.jsonl", base, args, root)
            elif stage.startswith("grpo"):
                adapter, training = grpo_stage(root / "grpo.jsonl", base, adapter, args, root)
            stages[stage] = {"adapter": adapter, "training": training,
                             **evaluate_stage(base, adapter, args, pool, reference)}
            _save_partial(root, base, info, stages)
            print(f"[learning] {stage}: seed reward {stages[stage]['seed_reward']['mean']:.4f}, rates "
                  f"{stages[stage]['rates']} ({time.monotonic() - started:.0f} s)", flush=True)
    for before, after in itertools.pairwise(STAGES):
        stages[after]["vs_previous"] = difference(stages[after]["seed_rewards"], stages[before]["seed_rewards"])
    for s in stages.values():
        s.pop("seed_rewards")
    return {"base": base, **info, "goals": args.goals.split(","), "samples_per_goal": args.samples,
            "settings": {k: v for k, v in vars(args).items() if k not in ("json",)}, "stages": stages,
            "scorer_version": _scorer_version(), "seconds": round(time.monotonic() - started, 1),
            "device": _device()}


def _scorer_version() -> str:
    from workers.evaluation.results import SCORER_VERSION

    return SCORER_VERSION


def _device() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    name = platform.processor()
    try:  # Linux: platform.processor() is often empty; /proc/cpuinfo names the CPU
        name = next((line.split(":", 1)[1].strip() for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), name)
    except OSError:
        pass
    return f"CPU ({name or '?'}, {os.cpu_count()} cores)"


def table(report: dict) -> str:
    head = (f"{'stage':8} {'syntax':>7} {'verif':>7} {'BP-free':>7} {'novel':>7} {'seed reward (95% CI)':>26} "
            f"{'shaped':>8} {'vs previous (95% CI)':>28}")
    lines = [head, "-" * len(head)]
    for name, s in report["stages"].items():
        r, sr = s["rates"], s["seed_reward"]
        vs = s.get("vs_previous")
        vs_text = (f"{vs['diff']:+.4f} [{vs['lo']:+.4f}, {vs['hi']:+.4f}]{'' if vs['excludes_zero'] else ' ~0'}"
                   if vs else "")
        lines.append(f"{name:8} {_pct(r['syntax_valid'])} {_pct(r['verification_pass'])} {_pct(r['bp_free'])} "
                     f"{_pct(r['novel_patterns'])} {sr['mean']:8.4f} [{sr['lo']:.4f}, {sr['hi']:.4f}] "
                     f"{s['shaped_reward']['mean']:8.4f} {vs_text:>28}")
    for name in STAGES[2:]:
        vs = report["stages"][name]["vs_previous"]
        lines.append(f"{name}: the mean held-out seed reward {'rose' if vs['diff'] > 0 else 'did not rise'}; the "
                     f"95 % interval {'excludes' if vs['excludes_zero'] else 'does NOT exclude'} zero")
    return "\n".join(lines)


def _pct(v) -> str:
    return f"{'-':>7}" if v is None else f"{100 * v:6.1f}%"


def plot(report: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["stages"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("seed_reward", "seed reward"), ("shaped_reward", "shaped reward")):
        m = [report["stages"][n][key]["mean"] for n in names]
        err = [[v - report["stages"][n][key]["lo"] for n, v in zip(names, m)],
               [report["stages"][n][key]["hi"] - v for n, v in zip(names, m)]]
        left.errorbar(names, m, yerr=err, marker="o", capsize=4, label=label)
    left.set_title("mean held-out reward (95 % CI)")
    left.legend()
    for key in ("syntax_valid", "verification_pass", "bp_free", "novel_patterns"):
        right.plot(names, [report["stages"][n]["rates"][key] or 0.0 for n in names], marker="o", label=key)
    right.set_ylim(0, 1)
    right.set_title("held-out rates")
    right.legend()
    fig.suptitle(f"learning curve on {', '.join(report['goals'])} ({report['device']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    import logging

    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    report = run(args)
    root = pathlib.Path(args.out)
    (root / "learning.json").write_text(json.dumps(report, indent=1, default=str))
    plot(report, root / "learning.png")
    print(json.dumps(report, default=str) if args.json else table(report))


if __name__ == "__main__":
    main()
