"""``qmind loop``: discovery and GRPO in rounds, with no hand work between them.

Round r (1..R): discover with the current adapter (a discovery run through the queue: generation tasks name the
adapter, GPU workers switch to it in place) -> export the run's prompts for GRPO -> ``train_grpo`` continuing the
current adapter -> the checkpoint is registered and becomes the current adapter. A closing discovery (round R + 1,
no training) measures the last adapter, so every trained adapter has a measured reward.

Resumable: the loop's folder ``<report_root>/<store-label>/loop-<key>/`` is named by a hash of its settings, and
``state.json`` there records each step as it finishes (discovery run id, export file, checkpoint). Rerunning with
the same arguments continues in the step it was in: a discovery run is resumed by its id, a finished step is not
repeated; a training run that was killed starts again (its half-written checkpoint never registered).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

from db.session import store_label


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """What one ``qmind loop`` does; the same settings always name the same loop folder (resume)."""

    goals: tuple[str, ...]
    """Goal names (built-in or YAML files)."""
    rounds: int = 2
    """Train-and-register rounds; one closing discovery follows the last."""
    model: str | None = None
    """Base model (model-table name, Hub id or folder)."""
    adapter: str | None = None
    """Adapter to start from (folder, ``latest``, ``quantum-mind-vN``); None: round 1 trains a new LoRA."""
    iterations: int = 2
    """Discovery iterations per round."""
    prompts_per_iteration: int = 4
    """Prompts per goal and iteration (three candidates each)."""
    generator: dict = dataclasses.field(default_factory=dict)
    """Further ``GeneratorConfig`` fields for discovery (max_new_tokens, device, ...)."""
    grpo: dict = dataclasses.field(default_factory=dict)
    """``GRPOSettings`` values to change, by path (``max_steps``, ``lora.r``, ``load_in_4bit``, ...)."""
    evaluation: dict = dataclasses.field(default_factory=dict)
    """``EvaluationConfig`` fields for the GRPO reward (bp_samples, restarts)."""
    baselines: bool = False
    """Score the baseline ansätze in each round's discovery."""
    seed: int = 0
    checkpoints: str = "models/checkpoints"
    trainer_dir: str = "models/trainer"
    report_root: str = "reports"

    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


class LoopError(RuntimeError):
    """A loop that cannot go on (a failed discovery, training error); rerun with the same arguments to resume."""


def loop_dir(settings: LoopSettings, engine) -> pathlib.Path:
    return pathlib.Path(settings.report_root) / store_label(engine.url) / f"loop-{settings.key()}"


class LoopState:
    """``state.json`` of one loop, written atomically after every finished step."""

    def __init__(self, folder: pathlib.Path, settings: LoopSettings) -> None:
        self.folder, self.path = folder, folder / "state.json"
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())
        else:
            self.data = {"key": settings.key(), "settings": dataclasses.asdict(settings), "start_adapter": None,
                         "rounds": [], "status": "running", "created_at": time.time()}

    @property
    def rounds(self) -> list[dict]:
        return self.data["rounds"]

    def round(self, index: int) -> dict:
        while len(self.rounds) <= index:
            self.rounds.append({"round": len(self.rounds) + 1})
        return self.rounds[index]

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


Notify = Callable[[str], None]


class TrainingLoop:
    """Construct with settings and goals, then ``run()``; rerun with the same settings to resume."""

    def __init__(self, settings: LoopSettings, goals: list, *, engine, notify: Notify | None = None,
                 progress_factory: Callable[[], Any] | None = None) -> None:
        self.settings, self.goals, self.engine = settings, goals, engine
        self.notify = notify or (lambda _msg: None)
        self.progress_factory = progress_factory
        self.folder = loop_dir(settings, engine)
        self.state = LoopState(self.folder, settings)

    # ---- steps -------------------------------------------------------------------------------------------------
    def _start_adapter(self) -> str | None:
        if self.state.data["start_adapter"] is None and self.settings.adapter:
            from training.registry import resolve_adapter

            # resolved once: on resume, `latest` must not become this loop's own newest checkpoint
            self.state.data["start_adapter"] = str(pathlib.Path(resolve_adapter(self.engine,
                                                                                self.settings.adapter)).resolve())
            self.state.save()
        return self.state.data["start_adapter"]

    def _adapter_for(self, index: int) -> str | None:
        return self.state.rounds[index - 1]["checkpoint"] if index else self._start_adapter()

    def _discover(self, index: int, adapter: str | None) -> None:
        from db.models import Run
        from db.session import session_scope
        from scheduler.loop import DiscoveryConfig, DiscoveryLoop

        entry = self.state.round(index)
        gen = {"generator": "transformers", **self.settings.generator}
        if self.settings.model:
            gen["model"] = self.settings.model
        if adapter:
            gen["adapter"] = adapter
        run_id = entry.get("run_id")
        if run_id is not None:
            with session_scope(self.engine) as session:
                if session.get(Run, run_id).status == "completed":
                    return
        config = DiscoveryConfig(iterations=self.settings.iterations,
                                 prompts_per_iteration=self.settings.prompts_per_iteration, generator=gen,
                                 seed=self.settings.seed + 1000 * index, baselines=self.settings.baselines,
                                 report_root=self.settings.report_root)
        progress = _RecordingProgress(self.progress_factory, lambda rid: self._record_run(index, rid))
        loop = DiscoveryLoop(self.goals, config, engine=self.engine, resume_run_id=run_id, progress=progress,
                             log=self.notify)
        summary = loop.run()
        entry.update(run_id=summary.run_id, report=summary.report)
        self.state.save()

    def _record_run(self, index: int, run_id: int) -> None:
        self.state.round(index)["run_id"] = run_id
        self.state.save()

    def _export(self, index: int) -> str:
        from training.export import export_grpo
        from training.store_rows import StoreFilters

        entry = self.state.round(index)
        if entry.get("data"):
            return entry["data"]
        out = self.folder / f"round-{index + 1}-grpo.jsonl"
        result = export_grpo(self.engine, out, filters=StoreFilters(runs=(entry["run_id"],)))
        entry.update(data=str(out), grpo_rows=getattr(result, "rows", None))
        self.state.save()
        return str(out)

    def _train(self, index: int, adapter: str | None, data: str) -> None:
        from training.fields import with_paths
        from training.grpo import train_grpo
        from training.grpo_config import GRPOSettings
        from workers.settings import scoring_settings

        values = dict(self.settings.grpo)
        if self.settings.model:
            values["base_model"] = self.settings.model
        result = train_grpo(data, settings=with_paths(GRPOSettings(), values), adapter=adapter,
                            explicit_base=False, checkpoints_root=self.settings.checkpoints,
                            trainer_root=self.settings.trainer_dir, engine=self.engine, do_register=True,
                            evaluation_config=scoring_settings().with_knobs(**self.settings.evaluation))
        self.state.round(index).update(
            checkpoint=str(pathlib.Path(result.checkpoint).resolve()), version=result.version,
            model_version_id=result.model_version_id, train_reward_mean=result.config.get("final_reward_mean"),
            train_seconds=result.config.get("train_seconds"))
        self.state.save()

    def _measure(self, index: int, adapter: str | None) -> None:
        from .rounds_report import round_rewards

        entry = self.state.round(index)
        entry.update(adapter=adapter, **round_rewards(self.engine, entry["run_id"]))
        self.state.save()

    # ---- the loop ----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """All rounds (those already done are skipped); returns the report's JSON."""
        from .rounds_report import write_loop_report

        total = self.settings.rounds + 1
        for index in range(total):
            adapter = self._adapter_for(index)
            entry = self.state.round(index)
            if entry.get("done"):
                continue
            name = pathlib.Path(adapter).name if adapter else "the base model"
            self.notify(f"round {index + 1}/{total}: discovering with {name}")
            self._discover(index, adapter)
            self._measure(index, adapter)
            self.notify(f"round {index + 1}/{total}: mean reward {entry['reward_mean']:.4f} over "
                        f"{entry['candidates']} candidates (run {entry['run_id']})")
            if index < self.settings.rounds:
                data = self._export(index)
                self.notify(f"round {index + 1}/{total}: GRPO on {entry.get('grpo_rows')} prompts from {name}")
                self._train(index, adapter, data)
                self.notify(f"round {index + 1}/{total}: registered {entry['version']} ({entry['checkpoint']})")
            entry["done"] = True
            self.state.save()
        self.state.data["status"] = "completed"
        self.state.save()
        return write_loop_report(self.folder, self.state.data)


class _RecordingProgress:
    """The discovery loop's progress object, plus a hook that stores the run id as soon as the run exists."""

    def __init__(self, factory, on_run: Callable[[int], None]) -> None:
        from scheduler.progress import LoopProgress

        self._inner = factory() if factory else LoopProgress(enabled=False)
        self._on_run = on_run

    def run_started(self, run_id: int, iterations: int) -> None:
        self._on_run(run_id)
        self._inner.run_started(run_id, iterations)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)
