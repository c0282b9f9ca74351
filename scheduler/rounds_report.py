"""Rewards of a ``qmind loop`` round (from the store) and the loop's report: ``report.json`` and ``reward.png``."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


def round_rewards(engine, run_id: int) -> dict[str, Any]:
    """Reward of every discovered candidate of a run (baselines excluded): the seed reward of its current-scorer
    evaluation, 0 for a candidate without code or without a reward (failed, not verified). Mean with a 95 % normal
    interval, mean shaped reward, the share that verified, and the best energy error."""
    from sqlalchemy import and_, select

    from db.models import Candidate, Evaluation, GenerationBatch
    from db.session import session_scope
    from workers.evaluation.results import SCORER_VERSION

    stmt = (select(Evaluation.seed_reward, Evaluation.shaped_reward, Evaluation.status, Evaluation.vqe_error)
            .select_from(Candidate)
            .join(GenerationBatch, GenerationBatch.id == Candidate.batch_id)
            .outerjoin(Evaluation, and_(Evaluation.code_sha256 == Candidate.code_sha256,
                                        Evaluation.goal_id == GenerationBatch.goal_id,
                                        Evaluation.scorer_version == SCORER_VERSION))
            .where(GenerationBatch.run_id == run_id, GenerationBatch.iteration >= 0))
    with session_scope(engine) as session:
        rows = session.execute(stmt).all()
    rewards = [float(r.seed_reward or 0.0) for r in rows]
    shaped = [float(r.shaped_reward or 0.0) for r in rows]
    errors = [r.vqe_error for r in rows if r.vqe_error is not None]
    mean, half = _mean_ci(rewards)
    return {"candidates": len(rows), "reward_mean": mean, "reward_ci95": half,
            "shaped_reward_mean": _mean_ci(shaped)[0],
            "valid_fraction": (sum(r.status == "valid" for r in rows) / len(rows)) if rows else 0.0,
            "best_error": min(errors) if errors else None}


def _mean_ci(values: list[float]) -> tuple[float, float | None]:
    if not values:
        return 0.0, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, 1.96 * math.sqrt(var / len(values))


def plot_rewards(rounds: list[dict], path: pathlib.Path) -> None:
    """Mean discovery reward (with its 95 % interval) per round, and the GRPO training reward of each round."""
    done = [r for r in rounds if r.get("reward_mean") is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    xs = [r["round"] for r in done]
    ax.errorbar(xs, [r["reward_mean"] for r in done], yerr=[r.get("reward_ci95") or 0.0 for r in done],
                marker="o", capsize=4, label="discovery: mean seed reward (95 % CI)")
    trained = [r for r in done if r.get("train_reward_mean") is not None]
    if trained:
        ax.plot([r["round"] for r in trained], [r["train_reward_mean"] for r in trained], marker="s",
                linestyle="--", label="GRPO: reward of the last step")
    for r in done:
        ax.annotate(pathlib.Path(r["adapter"]).name if r.get("adapter") else "base", (r["round"], r["reward_mean"]),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
    ax.set_xlabel("round (adapter used for discovery)")
    ax.set_ylabel("reward")
    ax.set_ylim(-0.03, 1.03)  # seed rewards lie in [0, 1]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, loc="best")
    ax.set_title("qmind loop: reward per round")
    fig.savefig(path, bbox_inches="tight", dpi=110)
    plt.close(fig)


def write_loop_report(folder: pathlib.Path, state: dict[str, Any]) -> dict[str, Any]:
    """``report.json`` (settings, every round, the PNG's path) and ``reward.png`` in the loop's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "reward.png"
    plot_rewards(state["rounds"], png)
    keys = ("round", "adapter", "run_id", "candidates", "reward_mean", "reward_ci95", "shaped_reward_mean",
            "valid_fraction", "best_error", "grpo_rows", "version", "checkpoint", "model_version_id",
            "train_reward_mean", "train_seconds")
    report = {"loop": state["key"], "status": state["status"], "settings": state["settings"],
              "start_adapter": state.get("start_adapter"), "folder": str(folder.resolve()),
              "plot": str(png.resolve()), "rounds": [{k: r.get(k) for k in keys} for r in state["rounds"]]}
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return report
