"""The discovery loop: goals in, candidates through the queue, what was learned back into the prompt.

Each iteration, for every goal not yet solved: build K prompts whose CONTEXT is the memory of this goal and its
neighbouring sizes; submit one generation task with all K prompts (``gpu`` queue for a model, ``cpu`` for the
procedural generator); fan the candidates out to evaluation tasks (``cpu`` queue: sandbox -> verify -> barren-plateau check -> VQE, each stage stopping a candidate
that fails it; renamed copies of scored circuits re-use their scores); record the iteration; stop early once the
target error is reached. Baselines are scored once per goal (their evaluations are keyed by code hash, so a later
run pays nothing for them).

Everything lives in the store under natural keys, so ``--resume RUN_ID`` continues without redoing finished work:
stored batches are not regenerated and final evaluations are not repeated. With no broker configured the same
code runs eagerly in-process.
"""

from __future__ import annotations

import dataclasses
import pathlib
import socket
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from db import writes
from db.migrate import ensure_schema
from db.models import Evaluation, Run
from db.session import session_scope, store_label
from workers.app import app as celery_app
from workers.app import current_config
from workers.evaluation.goals import Goal, goal_from_spec
from workers.evaluation.results import SCORER_VERSION
from workers.launch import QueueWatch, generation_queue
from workers.store import get_engine
from workers.submit import submit_evaluations, submit_generation, wait_for_batches, wait_for_evaluations

from . import history
from .baselines import baseline_programs
from .memory import build_memory_context
from .progress import LoopProgress
from .report import write_report


class DiscoveryError(RuntimeError):
    """The loop cannot go on (bad resume id, generator failing every batch, ...); the message says why."""


@dataclasses.dataclass(frozen=True)
class DiscoveryConfig:
    """Settings of one discovery run (stored with the run, so ``--resume`` continues with the same)."""

    iterations: int = 5
    """Iterations of generate -> evaluate -> remember."""
    prompts_per_iteration: int = 4
    """Prompts per goal and iteration (each gives one candidate per temperature)."""
    target_error: float | None = None
    """Stop a goal once its best energy error is at or below this."""
    generator: dict = dataclasses.field(default_factory=lambda: {"generator": "procedural"})
    """``GeneratorConfig`` fields for the GPU workers (generator, model, adapter, temperatures, ...)."""
    seed: int = 0
    """Seeds prompts, samplers and evaluations."""
    memory_budget: int = 3000
    """Characters of memory context per prompt."""
    baselines: bool = True
    """Score EfficientSU2 / RealAmplitudes / HVA baselines once per goal."""
    generation_timeout_s: float = 3600.0
    """How long to wait for one iteration's generation before giving up (resume later)."""
    evaluation_timeout_s: float = 3600.0
    """How long to wait for one iteration's evaluations before giving up (resume later)."""
    report_root: str = "reports"
    """Directory under which each run writes ``<store-label>/run-<id>/`` (``db.session.store_label``: runs of
    different stores never share a folder)."""

    def to_settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> DiscoveryConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in known})


@dataclasses.dataclass(frozen=True)
class GoalSummary:
    goal: str
    exact_energy: float
    best: dict | None
    """The best valid discovered candidate's metrics and code, or None."""
    baselines: list
    solved: bool
    candidates: int


@dataclasses.dataclass(frozen=True)
class RunSummary:
    run_id: int
    status: str
    iterations_done: int
    goals: list[GoalSummary]
    report: str | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _prompt_seed(seed: int, iteration: int, goal_index: int, k: int) -> int:
    return (seed * 1_000_003 + iteration * 10_007 + goal_index * 101 + k) % (2**31)


class DiscoveryLoop:
    """One run. Construct, then ``run()``; ``KeyboardInterrupt`` leaves the store consistent (status stopped)."""

    def __init__(self, goals: list[Goal], config: DiscoveryConfig, *, engine: Engine | None = None,
                 resume_run_id: int | None = None, progress: LoopProgress | None = None,
                 log: Callable[[str], None] | None = None, fail_without_workers: bool = False) -> None:
        self.config = config
        self.goals = goals
        self.engine = engine or get_engine(current_config(celery_app))
        self.resume_run_id = resume_run_id
        self.progress = progress or LoopProgress(enabled=False)
        self.log = log or (lambda _msg: None)
        self.goal_ids: dict[str, int] = {}
        self.run_id: int | None = None
        self.solved: set[str] = set()
        self.fail_without_workers = fail_without_workers

    # ---- setup ---------------------------------------------------------------------------------------------------
    def _start(self) -> int:
        ensure_schema(self.engine, upgrade=True)
        with session_scope(self.engine) as session:
            for goal in self.goals:
                self.goal_ids[goal.name] = writes.upsert_goal(session, goal.to_spec(), spec_hash=goal.spec_hash,
                                                              exact_energy=goal.exact_energy)
            if self.resume_run_id is not None:
                run = session.get(Run, self.resume_run_id)
                if run is None:
                    raise DiscoveryError(f"no run with id {self.resume_run_id} in the store")
                if run.status == "completed":
                    raise DiscoveryError(f"run {run.id} already completed ({run.iteration} iterations); "
                                         f"start a new run instead")
                writes.update_run(session, run.id, status="running")
                return run.id
            settings = self.config.to_settings()
            settings["goal_specs"] = [g.to_spec() for g in self.goals]
            return writes.create_run(session, goal_names=[g.name for g in self.goals],
                                     generator=str(self.config.generator.get("generator", "procedural")),
                                     settings=settings, seed=self.config.seed, host=socket.gethostname())

    def _iteration_reached(self) -> int:
        with session_scope(self.engine) as session:
            return session.get(Run, self.run_id).iteration

    # ---- stages --------------------------------------------------------------------------------------------------
    def _evaluate(self, candidate_ids: list[int], label: str) -> dict[int, str]:
        """Evaluate candidates (eagerly one by one, or all at once through the queue) with progress."""
        if not candidate_ids:
            return {}
        eager = current_config(celery_app).eager
        self.progress.start_stage(label, len(candidate_ids))
        if eager:
            statuses: dict[int, str] = {}
            for cid in candidate_ids:
                tickets = submit_evaluations([cid], seed=self.config.seed, engine=self.engine)
                statuses.update(wait_for_evaluations(tickets, timeout_s=60, engine=self.engine))
                self.progress.advance_stage(statuses[cid])
            return statuses
        tickets = submit_evaluations(candidate_ids, seed=self.config.seed, engine=self.engine)
        return wait_for_evaluations(tickets, timeout_s=self.config.evaluation_timeout_s, engine=self.engine,
                                    seed=self.config.seed, on_progress=self.progress.update_stage,
                                    watch=self._watch(current_config(celery_app).cpu_queue, "cpu"))

    def _watch(self, queue: str, kind: str) -> QueueWatch:
        """Says within seconds when no worker consumes ``queue`` (or stops the run with --fail-without-workers)."""
        return QueueWatch(queue, kind, celery_app, self.log, fail=self.fail_without_workers)

    def _baselines(self) -> None:
        if not self.config.baselines:
            return
        ids: list[int] = []
        with session_scope(self.engine) as session:
            for goal in self.goals:
                programs = baseline_programs(goal)
                batch = {"generator": history.BASELINE_GENERATOR, "prompt": "baselines", "candidates": [
                    {"temperature": 0.0, "raw": f"# baseline: {name}\n{code}", "code": f"# baseline: {name}\n{code}"}
                    for name, code in programs]}
                rec = writes.record_batch(session, run_id=self.run_id, goal_id=self.goal_ids[goal.name],
                                          iteration=-1, prompt_index=0, batch=batch, seed=self.config.seed)
                ids += list(rec.candidate_ids)
        self._evaluate(ids, "baselines")

    def _prompts(self, goal: Goal, iteration: int, goal_index: int) -> list[dict]:
        with session_scope(self.engine) as session:
            records = history.memory_records(session, goal, self.goal_ids[goal.name])
        context = build_memory_context(records, budget=self.config.memory_budget)
        parents = [r.code for r in sorted((r for r in records if r.scored and r.num_qubits == goal.num_qubits),
                                          key=lambda r: r.relative_error or 0.0)[:3]]
        return [{"prompt_index": k, "memory_context": context, "parents": parents,
                 "seed": _prompt_seed(self.config.seed, iteration, goal_index, k)}
                for k in range(self.config.prompts_per_iteration)]

    def _generate(self, iteration: int, goals: list[Goal]) -> list[int]:
        """One generation task per goal (all K prompts in it); returns the new candidates' ids."""
        self.progress.start_stage("generating", len(goals) * self.config.prompts_per_iteration)
        submitted, prompts_of = [], {}
        for gi, goal in enumerate(goals):
            prompts = prompts_of[goal.name] = self._prompts(goal, iteration, self.goals.index(goal))
            with session_scope(self.engine) as session:
                missing = [p for p in prompts if writes.find_batch(
                    session, run_id=self.run_id, goal_id=self.goal_ids[goal.name], iteration=iteration,
                    prompt_index=p["prompt_index"]) is None]
            if missing:
                submit_generation(run_id=self.run_id, goal_id=self.goal_ids[goal.name], iteration=iteration,
                                  prompts=missing, generator=self.config.generator)
            submitted.append(goal)
        ids: list[int] = []
        failures = []
        config = current_config(celery_app)
        queue = generation_queue(config, str(self.config.generator.get("generator", "procedural")))
        watch = self._watch(queue, "cpu" if queue == config.cpu_queue else "gpu")
        for goal in submitted:
            def resubmit(lost: list[int], goal: Goal = goal) -> None:  # prompts whose message the broker lost
                submit_generation(run_id=self.run_id, goal_id=self.goal_ids[goal.name], iteration=iteration,
                                  prompts=[p for p in prompts_of[goal.name] if p["prompt_index"] in lost],
                                  generator=self.config.generator)

            outcomes = wait_for_batches(run_id=self.run_id, goal_id=self.goal_ids[goal.name], iteration=iteration,
                                        prompt_indices=list(range(self.config.prompts_per_iteration)),
                                        timeout_s=self.config.generation_timeout_s, engine=self.engine,
                                        resubmit=resubmit, queue=queue, watch=watch)
            for o in outcomes:
                self.progress.advance_stage(o.status)
                ids += list(o.candidate_ids)
                if o.status != "done":
                    failures.append(f"{goal.name} prompt {o.prompt_index}: {o.error}")
        if failures and not ids:
            raise DiscoveryError("every generation batch failed this iteration: " + "; ".join(failures[:3]))
        for f in failures:
            self.log(f"[yellow]generation failed[/] {f}")
        return ids

    def _best_error(self, goal: Goal) -> float | None:
        with session_scope(self.engine) as session:
            points = history.report_points(session, self.run_id, self.goal_ids[goal.name])
        errs = [p.error for p in points if not p.baseline and p.error is not None]
        return min(errs) if errs else None

    # ---- the run -------------------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        started = time.monotonic()
        self.run_id = self._start()
        self.progress.run_started(self.run_id, self.config.iterations)
        try:
            self._baselines()
            start = self._iteration_reached()
            self.progress.iterations_done(start)
            for iteration in range(start, self.config.iterations):
                active = [g for g in self.goals if g.name not in self.solved]
                if not active:
                    break
                ids = self._generate(iteration, active)
                self._evaluate(ids, f"evaluating (iteration {iteration + 1})")
                with session_scope(self.engine) as session:
                    writes.update_run(session, self.run_id, iteration=iteration + 1)
                for goal in active:
                    best = self._best_error(goal)
                    if best is not None and self.config.target_error is not None and \
                            best <= self.config.target_error:
                        self.solved.add(goal.name)
                        self.log(f"[green]{goal.name}: target error {self.config.target_error:g} reached "
                                 f"({best:.3e}) after {iteration + 1} iteration(s)[/]")
                self.progress.iterations_done(iteration + 1, self._best_errors())
            status = "completed"
        except KeyboardInterrupt:
            with session_scope(self.engine) as session:
                writes.update_run(session, self.run_id, status="stopped", error="interrupted by the user (Ctrl-C)")
            self.progress.stop()
            raise
        except Exception as exc:
            with session_scope(self.engine) as session:
                writes.update_run(session, self.run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
            self.progress.stop()
            raise
        with session_scope(self.engine) as session:
            writes.update_run(session, self.run_id, status=status)
        self.progress.stop()
        return self.summary(time.monotonic() - started)

    def _best_errors(self) -> dict[str, float | None]:
        return {g.name: self._best_error(g) for g in self.goals}

    def summary(self, seconds: float) -> RunSummary:
        report_dir = pathlib.Path(self.config.report_root) / store_label(self.engine.url) / f"run-{self.run_id}"
        goals_info, summaries = {}, []
        with session_scope(self.engine) as session:
            run = session.get(Run, self.run_id)
            run_meta = {"id": run.id, "goals": run.goal_names, "generator": run.generator, "seed": run.seed,
                        "status": run.status, "iterations": run.iteration, "settings": run.settings,
                        "started_at": str(run.started_at), "ended_at": str(run.ended_at),
                        "scorer_version": SCORER_VERSION}
            iterations_done = run.iteration
            for goal in self.goals:
                points = history.report_points(session, self.run_id, self.goal_ids[goal.name])
                goals_info[goal.name] = {"exact_energy": goal.exact_energy, "points": points,
                                         "iterations": max(1, iterations_done)}
                found = sorted((p for p in points if not p.baseline and p.error is not None), key=lambda p: p.error)
                best = None
                if found:
                    p = found[0]
                    ev = session.execute(select(Evaluation.vqe_energy).where(
                        Evaluation.goal_id == self.goal_ids[goal.name], Evaluation.scorer_version == SCORER_VERSION,
                        Evaluation.code_sha256 == writes.code_sha256(p.code))).scalar_one_or_none()
                    best = {"label": p.label, "error": p.error, "energy": ev, "depth": p.depth,
                            "num_parameters": p.num_parameters, "two_qubit_gates": p.two_qubit_gates,
                            "decay_rate": p.decay_rate, "has_barren_plateau": p.has_barren_plateau,
                            "iteration": p.iteration + 1, "code": p.code}
                baselines = [{"label": p.label, "error": p.error, "depth": p.depth, "num_parameters": p.num_parameters,
                              "two_qubit_gates": p.two_qubit_gates,
                              "decay_rate": p.decay_rate, "has_barren_plateau": p.has_barren_plateau,
                              "status": p.status} for p in points if p.baseline]
                solved = goal.name in self.solved
                summaries.append(GoalSummary(goal.name, goal.exact_energy, best, baselines, solved,
                                             sum(1 for p in points if not p.baseline)))
        report = write_report(report_dir, run_meta, goals_info)
        return RunSummary(self.run_id, run_meta["status"], iterations_done, summaries, str(report), round(seconds, 2))


def resume_goals(engine: Engine, run_id: int) -> tuple[list[Goal], DiscoveryConfig]:
    """The goals and settings a stored run was started with."""
    ensure_schema(engine, upgrade=True)
    with session_scope(engine) as session:
        run = session.get(Run, run_id)
        if run is None:
            known = session.execute(select(Run.id, Run.status).order_by(Run.id.desc()).limit(10)).all()
            listing = ", ".join(f"{i} ({s})" for i, s in known) or "none"
            raise DiscoveryError(f"no run with id {run_id} in the store; recent runs: {listing}")
        settings = dict(run.settings or {})
    goals = [goal_from_spec(spec) for spec in settings.pop("goal_specs", [])]
    if not goals:
        raise DiscoveryError(f"run {run_id} has no stored goal specs; it cannot be resumed")
    return goals, DiscoveryConfig.from_settings(settings)
