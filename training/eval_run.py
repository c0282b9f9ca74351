"""One ``qmind eval-model`` run, assembled from its settings: the generator, the held-out goals, the novelty
reference, the judging pool (with the scoring settings the caller read at its edge) and, when asked, the stored
result. The command line (``scheduler/cli/eval_model.py``) only parses these settings and prints the result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import TrainingError
from .fields import setting


@dataclasses.dataclass(frozen=True)
class EvalModelSettings:
    """What ``qmind eval-model`` measures and how (its options are generated from these fields)."""

    model: str | None = setting(None, "Base model (model-table name, Hub id or folder).", trl=None)
    adapter: str | None = setting(None, "Adapter folder, latest, or quantum-mind-vN.", trl=None)
    generator: str = setting(
        "transformers", "transformers, vllm, vllm-server, or procedural (the no-model baseline).", trl=None)
    prompts: int = setting(20, "Number of prompts (round-robin over the goals).", trl=None)
    goals: tuple[str, ...] = setting(
        (), "Comma-separated held-out goals (default: the SFT export's eval goals, else built-ins not trained on).",
        trl=None)
    training_data: str | None = setting(
        None, "SFT export for the novelty check (default: the adapter's config.yaml).", trl=None)
    temperatures: tuple[float, ...] = setting((0.7,), "Completions per prompt, one per temperature.", trl=None)
    max_new_tokens: int | None = setting(None, "Completion length (seed 1024).", trl=None)
    device: str | None = setting(None, "auto, cpu, cuda.", trl=None)
    seed: int = setting(0, "Sampling seed of the first prompt (prompt i uses seed + i).", trl=None)
    workers: int | None = setting(None, "Judging processes (default: one per core).", trl=None)
    bp_samples: int | None = setting(
        None, "Barren-plateau samples per size (default: QMIND_BP_SAMPLES, else 200).", trl=None)
    with_vqe: bool = setting(False, "Also run VQE (not needed for the four rates).", trl=None)


def generator_config(settings: EvalModelSettings):
    """The generator's configuration; the model fields only for a model (the procedural baseline has none)."""
    from pydantic import ValidationError

    from workers.generation.config import GeneratorConfig

    values: dict[str, Any] = {"generator": settings.generator, "temperatures": settings.temperatures,
                              "seed": settings.seed}
    if settings.generator != "procedural":
        model = {"model": settings.model, "adapter": settings.adapter, "max_new_tokens": settings.max_new_tokens,
                 "device": settings.device}
        values.update({k: v for k, v in model.items() if v is not None})
    try:
        return GeneratorConfig(**values)
    except ValidationError as exc:
        raise TrainingError("invalid generator settings: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())) from exc


def run_eval_model(settings: EvalModelSettings, *, scoring, url: str | None = None, store: bool = True):
    """Generate, judge and (``store``) record one evaluation of a model; returns (``ModelEvaluation``, the model
    version id it was stored with or None). ``scoring``: the cascade's settings tree, read by the caller."""
    from workers.evaluation.goals import get_goal
    from workers.generation import build_generator
    from workers.generation.errors import GenerationError

    from .evaluate_pool import EvaluationPool
    from .model_eval import (
        Reference,
        evaluate_model,
        held_out_goals,
        losses_from_checkpoint,
        training_data_of,
    )

    if settings.prompts < 1:
        raise TrainingError(f"--prompts must be at least 1, got {settings.prompts}")
    gen_config = generator_config(settings)
    data = settings.training_data or training_data_of(settings.adapter)
    reference = Reference.from_export(data) if data else None
    goals = [get_goal(g) for g in held_out_goals(reference, settings.goals)]
    config = dataclasses.replace(scoring.with_knobs(bp_samples=settings.bp_samples or None), run_vqe=settings.with_vqe)
    try:
        with EvaluationPool(workers=settings.workers, seed=settings.seed, config=config) as pool:
            result = evaluate_model(build_generator(gen_config), goals, prompts=settings.prompts, seed=settings.seed,
                                    pool=pool, reference=reference, losses=losses_from_checkpoint(settings.adapter),
                                    model=settings.model, adapter=settings.adapter)
    except GenerationError as exc:
        raise TrainingError(str(exc)) from exc
    return result, (_store(result, url) if store else None)


def _store(result, url: str | None) -> int:
    from db.migrate import ensure_schema
    from db.session import make_engine

    from .model_eval import store_evaluation

    engine = make_engine(url)
    ensure_schema(engine, upgrade=False)
    return store_evaluation(engine, result)
