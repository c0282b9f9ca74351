"""``qmind eval-model``: the seed's post-training validation, measured through the sandboxed evaluation
cascade.

For ``prompts`` prompts on held-out goals (round-robin), the generator writes completions; each is judged:

- syntax validity: code was extracted and *executes in the sandbox*, returning a circuit (the seed's sketch
  calls ``exec(code)`` in-process; generated code is hostile and never runs outside the sandbox here);
- verification pass: the circuit passes verification (width, parameters, allowed gates, depth);
- barren-plateau free: verified and not flagged by the gradient-variance check;
- novel patterns: verified, and its circuit structure is absent from the training data: its code hash is not a
  training completion's, and its circuit fingerprint (``workers.evaluation.fingerprint``; renaming- and
  order-invariant) differs from every training circuit's at every qubit count the training data has. The
  program is rebuilt in the sandbox at those sizes, so a held-out goal of another size is compared fairly.

All four rates share one denominator, the number of completions (as the seed's ``evaluate_model`` divides by
the number of prompts). Targets: > 95 %, > 80 %, > 60 %, > 20 %; training-loss targets (train < 0.5, eval <
0.6, perplexity < 5.0) are read from the checkpoint's config.yaml when there is one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import time
from collections.abc import Sequence
from typing import Any

from workers.evaluation.goals import Goal
from workers.records import NO_CODE

from .errors import TrainingError
from .evaluate_pool import EvaluationPool, Verdict

RATE_TARGETS: dict[str, float] = {
    "syntax_valid": 0.95,
    "verification_pass": 0.80,
    "bp_free": 0.60,
    "novel_patterns": 0.20,
}
LOSS_TARGETS: dict[str, float] = {"train_loss": 0.5, "eval_loss": 0.6, "perplexity": 5.0}
DEFAULT_HELD_OUT = ("tfim-4", "tfim-6", "heisenberg-4", "heisenberg-6", "xxz-6", "xy-6", "tfim-open-6", "h2")


@dataclasses.dataclass(frozen=True)
class Reference:
    """The training data's circuits, for the novelty check."""

    source: str
    code_hashes: frozenset[str]
    fingerprints: dict
    """num_qubits -> frozenset of circuit fingerprints of training completions at that size."""
    train_goals: tuple[str, ...] = ()
    eval_goals: tuple[str, ...] = ()

    @property
    def sizes(self) -> list[int]:
        return sorted(self.fingerprints)

    @classmethod
    def from_export(cls, path: str | pathlib.Path) -> Reference:
        """The train rows of a ``qmind export sft`` file (eval rows are held out, so they do not count)."""
        from .dataset_files import load_rows, read_meta

        meta = read_meta(path)
        if meta.get("kind") != "sft":
            raise TrainingError(
                f"{path} is a '{meta.get('kind')}' export; novelty is measured against an SFT export"
            )
        rows = load_rows(path)
        hashes, prints = set(), {}
        for r in rows:
            if r.get("split") != "train":
                continue
            hashes.add(r["code_sha256"])
            if r.get("circuit_fingerprint"):
                prints.setdefault(int(r["num_qubits"]), set()).add(r["circuit_fingerprint"])
        split = meta.get("split") or {}
        return cls(
            str(path),
            frozenset(hashes),
            {n: frozenset(v) for n, v in prints.items()},
            tuple(split.get("train_goals") or ()),
            tuple(split.get("eval_goals") or ()),
        )


def training_data_of(adapter: str | None) -> str | None:
    """The SFT export an adapter descends from: its config.yaml's data, or its parent's (a GRPO
    checkpoint)."""
    from .checkpoints import read_config

    seen = set()
    while adapter and (pathlib.Path(adapter) / "config.yaml").is_file() and adapter not in seen:
        seen.add(adapter)
        config = read_config(adapter)
        data = config.get("training_data") or {}
        if isinstance(data, dict) and (data.get("meta") or {}).get("kind") == "sft" and data.get("file"):
            return str(data["file"])
        adapter = config.get("parent_adapter")
    return None


def held_out_goals(reference: Reference | None, explicit: Sequence[str] = ()) -> list[str]:
    """Explicit goals; else the export's eval-split goals; else the default pool minus the training goals."""
    if explicit:
        return list(explicit)
    if reference is not None and reference.eval_goals:
        return list(reference.eval_goals)
    train = set(reference.train_goals) if reference is not None else set()
    goals = [g for g in DEFAULT_HELD_OUT if g not in train]
    if not goals:
        raise TrainingError("every default held-out goal is in the training split; name goals with --goals")
    return goals


def _fingerprints_at(code: str, sizes: list[int], sandbox_config) -> dict[int, str]:
    """Build the program at several sizes in the sandbox and fingerprint each circuit that came back."""
    from workers.evaluation.errors import EvaluationError
    from workers.evaluation.fingerprint import circuit_fingerprint
    from workers.evaluation.sandbox import load_circuit, run_candidate

    box = run_candidate(code, sizes, config=sandbox_config)
    out = {}
    for n, blob in (box.circuits_qpy or {}).items():
        try:
            out[int(n)] = circuit_fingerprint(load_circuit(blob))
        except EvaluationError:
            continue
    return out


def is_novel(
    verdict: Verdict, code: str, goal: Goal, reference: Reference, fingerprints: dict[int, str]
) -> bool:
    if hashlib.sha256(code.encode()).hexdigest() in reference.code_hashes:
        return False
    seen = dict(fingerprints)
    if verdict.fingerprint:
        seen[goal.num_qubits] = verdict.fingerprint
    return not any(fp in reference.fingerprints.get(n, ()) for n, fp in seen.items())


@dataclasses.dataclass(frozen=True)
class ModelEvaluation:
    """The result of one ``eval-model`` run (JSON-ready through ``to_dict``)."""

    generator: str
    model: str | None
    adapter: str | None
    goals: tuple[str, ...]
    completions: int
    counts: dict
    """syntax_valid, verification_pass, bp_free, novel_patterns (numbers of completions) and statuses."""
    rates: dict
    """Each count / completions; novel_patterns is None when no training data was available."""
    targets: dict
    """metric -> {value, target, met} for the four rates and (when known) the training losses."""
    reference: str | None
    seconds: float
    per_goal: dict = dataclasses.field(default_factory=dict)
    samples: tuple = ()
    """Per completion: goal, temperature, status, code hash, first error, novel, VQE error and the seed and shaped
    rewards (0 unless valid; VQE runs only with ``run_vqe``)."""
    identity: dict = dataclasses.field(default_factory=dict)
    """generator, model, adapter as the batches recorded them (what names the model version in the store)."""
    date: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> dict[str, Any]:
        """What is stored with the model version (everything but the per-completion samples)."""
        return {k: v for k, v in self.to_dict().items() if k != "samples"}


def store_evaluation(engine, evaluation: ModelEvaluation) -> int:
    """Merge the evaluation into its model version's metrics (key ``eval_model``); returns the version's
    id."""
    from db.session import session_scope
    from db.writes import upsert_model_version
    from workers.model_version import model_version_fields

    with session_scope(engine) as session:
        return upsert_model_version(
            session, **model_version_fields(evaluation.identity), metrics={"eval_model": evaluation.summary()}
        )


def _targets(rates: dict, losses: dict) -> dict:
    out = {
        k: {
            "value": rates.get(k),
            "target": f"> {v:.0%}",
            "met": None if rates.get(k) is None else rates[k] > v,
        }
        for k, v in RATE_TARGETS.items()
    }
    for k, v in LOSS_TARGETS.items():
        value = losses.get(k)
        out[k] = {"value": value, "target": f"< {v:g}", "met": None if value is None else value < v}
    return out


def _novelty(rows, verdicts, reference: Reference, pool: EvaluationPool) -> list[bool]:
    """Per completion: verified and unlike every program of the reference (a failed rebuild is not novel)."""
    codes = sorted({c.code for (_, c), v in zip(rows, verdicts) if v.verified})
    prints = dict(zip(codes, pool.map(_fingerprints_at, [(code, reference.sizes, pool.config.sandbox)
                                                         for code in codes], on_error=None)))
    return [bool(v.verified and prints[c.code] is not None and is_novel(v, c.code, g, reference, prints[c.code]))
            for (g, c), v in zip(rows, verdicts)]


def _counts(verdicts, novel: list[bool] | None) -> dict:
    counts = {
        "syntax_valid": sum(v.built for v in verdicts),
        "verification_pass": sum(v.verified for v in verdicts),
        "bp_free": sum(v.verified and v.has_barren_plateau is False for v in verdicts),
        "novel_patterns": sum(novel) if novel is not None else None,
        "no_code": sum(v.status == NO_CODE for v in verdicts),
        "statuses": {},
    }
    for v in verdicts:
        counts["statuses"][v.status] = counts["statuses"].get(v.status, 0) + 1
    return counts


def _per_goal(rows, verdicts) -> dict[str, dict]:
    per_goal: dict[str, dict] = {}
    for (g, _), v in zip(rows, verdicts):
        entry = per_goal.setdefault(
            g.name, {"completions": 0, "syntax_valid": 0, "verification_pass": 0, "bp_free": 0}
        )
        entry["completions"] += 1
        entry["syntax_valid"] += v.built
        entry["verification_pass"] += v.verified
        entry["bp_free"] += v.verified and v.has_barren_plateau is False
    return per_goal


def _samples(rows, verdicts, novel: list[bool]) -> tuple[dict, ...]:
    return tuple(
        {
            "goal": g.name,
            "temperature": c.temperature,
            "status": v.status,
            "code_sha256": v.code_sha256,
            "error": v.errors[0] if v.errors else None,
            "novel": nv,
            "vqe_error": v.vqe_error,
            "seed_reward": v.reward("seed"),
            "shaped_reward": v.reward("shaped"),
        }
        for (g, c), v, nv in zip(rows, verdicts, novel)
    )


def evaluate_model(
    generator,
    goals: Sequence[Goal],
    *,
    prompts: int,
    seed: int = 0,
    pool: EvaluationPool,
    reference: Reference | None = None,
    losses: dict | None = None,
    model: str | None = None,
    adapter: str | None = None,
) -> ModelEvaluation:
    """Generate ``prompts`` prompts' completions on ``goals`` with ``generator`` and measure the seed's
    rates."""
    from workers.generation.base import PromptRequest

    if prompts < 1 or not goals:
        raise TrainingError(
            f"need at least one prompt and one goal, got {prompts} prompts and {len(goals)} goals"
        )
    start = time.perf_counter()
    requests = [
        PromptRequest(goal=goals[i % len(goals)], memory_context="", seed=seed + i) for i in range(prompts)
    ]
    batches = generator.generate(requests)
    identity = {"generator": batches[0].generator, "model": batches[0].model, "adapter": batches[0].adapter}
    rows = [(req.goal, cand) for req, batch in zip(requests, batches) for cand in batch.candidates]
    verdicts = pool.judge_codes([(c.code, _spec(g)) for g, c in rows])
    verdicts = [
        v if v is not None else Verdict(NO_CODE, "extract", (c.extraction_error or "no code",))
        for v, (_, c) in zip(verdicts, rows)
    ]
    novel = _novelty(rows, verdicts, reference, pool) if reference is not None else [False] * len(rows)
    n = len(rows)
    counts = _counts(verdicts, novel if reference is not None else None)
    rates = {k: (counts[k] / n if counts[k] is not None else None) for k in RATE_TARGETS}
    return ModelEvaluation(
        generator=getattr(generator, "name", "?"),
        model=model,
        adapter=adapter,
        goals=tuple(g.name for g in goals),
        completions=n,
        counts=counts,
        rates=rates,
        targets=_targets(rates, losses or {}),
        reference=reference.source if reference else None,
        seconds=round(time.perf_counter() - start, 3),
        per_goal=_per_goal(rows, verdicts),
        samples=_samples(rows, verdicts, novel),
        identity=identity,
        date=_now(),
    )


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _spec(goal: Goal) -> str:
    import json

    return json.dumps(goal.to_spec(), sort_keys=True)


def losses_from_checkpoint(adapter: str | None) -> dict[str, float]:
    """train_loss / eval_loss / perplexity from an adapter's config.yaml (empty without one)."""
    from .checkpoints import read_config

    if not adapter or not (pathlib.Path(adapter) / "config.yaml").is_file():
        return {}
    config = read_config(adapter)
    out = {
        "train_loss": config.get("final_loss"),
        "eval_loss": config.get("eval_loss"),
        "perplexity": config.get("perplexity"),
    }
    return {k: float(v) for k, v in out.items() if v is not None}
