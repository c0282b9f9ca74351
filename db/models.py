"""The tables of the store (SQLAlchemy 2.0 typed models).

Natural keys make every write idempotent (INSERT ... ON CONFLICT, see ``writes.py``):

* goals: ``spec_hash`` (the physics and limits of the goal),
* model_versions: (``base_model``, ``adapter_sha256``),
* generation_batches: (``run_id``, ``goal_id``, ``iteration``, ``prompt_index``),
* candidates: (``batch_id``, ``candidate_index``),
* evaluations: (``code_sha256``, ``goal_id``, ``scorer_version``) -- the same code is evaluated once per goal and
  scorer version, however many candidates produced it. A candidate finds its evaluation through its code hash and
  the goal of its batch.

Changing a model needs a migration (``db/migrations/versions``); ``tests/test_migrations.py`` fails on drift.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

# Evaluation status values (the evaluation core's STATUS_* plus the queue's own "pending").
STATUS_PENDING = "pending"
STATUS_FAILED = "failed"
FINAL_STATUSES = ("valid", "error", "timeout", "resource", "invalid", "flagged", STATUS_FAILED)


class Goal(Base):
    """A snapshot of ``Goal.to_spec()``: enough to rebuild the exact goal on any host."""

    __tablename__ = "goals"

    id: Mapped[int] = mapped_column(primary_key=True)
    spec_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    num_qubits: Mapped[int]
    exact_energy: Mapped[float] = mapped_column(Float)
    max_depth: Mapped[int]
    allowed_gates: Mapped[list]
    spec: Mapped[dict]
    provenance: Mapped[dict]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """A generator model: base weights plus an optional LoRA adapter identified by its content hash."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("base_model", "adapter_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    base_model: Mapped[str] = mapped_column(String(256))
    adapter_sha256: Mapped[str] = mapped_column(String(64), default="")
    """sha256 over the adapter's files; '' for the base model alone (or a procedural generator)."""
    adapter_path: Mapped[str | None] = mapped_column(String(1024))
    training_config: Mapped[dict] = mapped_column(default=dict)
    metrics: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One discovery run: goals, settings, generator, how far it got."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_names: Mapped[list]
    settings: Mapped[dict] = mapped_column(default=dict)
    generator: Mapped[str] = mapped_column(String(32))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), index=True)
    seed: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    """running, completed, failed or stopped."""
    iteration: Mapped[int] = mapped_column(default=0)
    """Last iteration reached."""
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(256))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]


class GenerationBatch(Base):
    """One prompt and what the generator made of it."""

    __tablename__ = "generation_batches"
    __table_args__ = (UniqueConstraint("run_id", "goal_id", "iteration", "prompt_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id"), index=True)
    iteration: Mapped[int]
    prompt_index: Mapped[int]
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), index=True)
    generator: Mapped[str] = mapped_column(String(32))
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    prompt: Mapped[str] = mapped_column(Text, default="")
    memory_context: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict] = mapped_column(default=dict)
    """Sampling settings: temperatures, top_p, top_k, repetition_penalty, max_new_tokens, stop, seed."""
    seed: Mapped[int] = mapped_column(default=0)
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="done")
    """done, or failed (then ``error`` says why and there are no candidates)."""
    error: Mapped[str | None] = mapped_column(Text)
    worker_host: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Candidate(Base):
    """One completion and the code extracted from it."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("batch_id", "candidate_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("generation_batches.id"))
    candidate_index: Mapped[int]
    """Position in the batch (0, 1, 2 for the three temperatures)."""
    temperature: Mapped[float] = mapped_column(Float)
    raw: Mapped[str] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(Text)
    code_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    extraction_error: Mapped[str | None] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(default=0)
    seed: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Evaluation(Base):
    """The evaluation cascade's verdict for one piece of code on one goal, under one scorer version."""

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("code_sha256", "goal_id", "scorer_version"),
        Index("ix_evaluations_goal_id_status_vqe_error", "goal_id", "status", "vqe_error"),
        # only the few unfinished rows: cheap to maintain, finds stuck evaluations
        Index("ix_evaluations_pending", "updated_at", postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id"))
    scorer_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=STATUS_PENDING)
    errors: Mapped[list] = mapped_column(default=list)
    stage: Mapped[str] = mapped_column(String(16), default="")
    # verification
    depth: Mapped[int | None]
    num_parameters: Mapped[int | None]
    gate_counts: Mapped[dict | None]
    num_two_qubit_gates: Mapped[int | None]
    # barren plateau
    has_barren_plateau: Mapped[bool | None]
    bp_method: Mapped[str | None] = mapped_column(String(16))
    bp_sizes: Mapped[list | None]
    bp_variances: Mapped[list | None]
    bp_decay_rate: Mapped[float | None] = mapped_column(Float)
    bp_decay_rate_stderr: Mapped[float | None] = mapped_column(Float)
    bp_two_design_variance: Mapped[float | None] = mapped_column(Float)
    bp_reason: Mapped[str | None] = mapped_column(Text)
    bp_verdict: Mapped[str | None] = mapped_column(String(24))
    """'barren plateau', 'no barren plateau' or 'not measurable' (scorer 2026.12.1 on; NULL on older rows)."""
    # VQE
    vqe_energy: Mapped[float | None] = mapped_column(Float)
    exact_energy: Mapped[float | None] = mapped_column(Float)
    vqe_error: Mapped[float | None] = mapped_column(Float)
    vqe_relative_error: Mapped[float | None] = mapped_column(Float)
    chemical_accuracy: Mapped[bool | None]
    below_exact: Mapped[bool | None]
    vqe_evaluations: Mapped[int | None]
    vqe_gradient_evaluations: Mapped[int | None]
    vqe_seconds: Mapped[float | None] = mapped_column(Float)
    vqe_restarts: Mapped[int | None]
    vqe_seeds: Mapped[list | None]
    vqe_success_fraction: Mapped[float | None] = mapped_column(Float)
    vqe_optimizer: Mapped[str | None] = mapped_column(String(32))
    vqe_best_parameters: Mapped[list | None]
    # hardware stage (goals with ``hardware`` set): routed cost on a fake IBM device, energy under its noise
    hw_backend: Mapped[str | None] = mapped_column(String(32))
    hw_two_qubit_gates: Mapped[int | None]
    """Two-qubit gates after layout, routing and translation to the device's basis."""
    hw_depth: Mapped[int | None]
    hw_noisy_energy: Mapped[float | None] = mapped_column(Float)
    """Energy at the VQE's best parameters from hw_shots noisy shots; NULL when not measured (hw_details says why)."""
    hw_noisy_stderr: Mapped[float | None] = mapped_column(Float)
    hw_noisy_error: Mapped[float | None] = mapped_column(Float)
    hw_shots: Mapped[int | None]
    hw_details: Mapped[dict | None]
    """The whole HardwareResult (gate counts, layout, groups, method, seed, not_measured)."""
    # goal sets: vqe_* hold the worst member's result; these the rest
    set_mean_error: Mapped[float | None] = mapped_column(Float)
    set_extrapolation_qubits: Mapped[int | None]
    set_extrapolation_error: Mapped[float | None] = mapped_column(Float)
    """VQE error at a lattice size larger than every member (reported, never paid)."""
    set_details: Mapped[dict | None]
    """The whole GoalSetResult (per-member errors, worst member, extrapolation note)."""
    # reward
    reward_version: Mapped[str | None] = mapped_column(String(32))
    seed_reward: Mapped[float | None] = mapped_column(Float)
    shaped_reward: Mapped[float | None] = mapped_column(Float)
    reward_components: Mapped[dict | None]
    seed_reward_literal: Mapped[float | None] = mapped_column(Float)
    """The seed document's max(0, 1 - 10 * (E - E0)) as written (comparison only; NULL on rows before 2026.12.1)."""
    # bookkeeping
    seed: Mapped[int] = mapped_column(default=0)
    timings: Mapped[dict] = mapped_column(default=dict)
    sandbox_isolation: Mapped[str | None] = mapped_column(String(16))
    worker_host: Mapped[str | None] = mapped_column(String(256))
    attempts: Mapped[int] = mapped_column(default=0)
    """Times a worker started this evaluation (incremented and committed before the work starts)."""
    circuit_fingerprint: Mapped[str | None] = mapped_column(String(80), index=True)
    """Canonical hash of the built circuit (renaming-invariant; finds renamed copies across runs)."""
    reuse_key: Mapped[str | None] = mapped_column(String(80), index=True)
    """Exact key under which the scores may be reused: the scorer version and the structural (renaming-invariant,
    not numerical) fingerprints of the circuits at every scored size (``fingerprint.reuse_key``)."""
    reused_from: Mapped[str | None] = mapped_column(String(200))
    """When the scores were copied from an earlier evaluation of the same circuit: that evaluation's key."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]

    def summary(self) -> dict[str, Any]:
        """The fields scripts usually want, JSON-ready."""
        keys = ("id", "code_sha256", "goal_id", "scorer_version", "status", "errors", "stage", "depth",
                "num_parameters", "num_two_qubit_gates", "has_barren_plateau", "vqe_energy", "exact_energy",
                "vqe_error", "vqe_relative_error", "hw_two_qubit_gates", "hw_noisy_error", "set_mean_error",
                "set_extrapolation_qubits", "set_extrapolation_error", "seed_reward",
                "shaped_reward", "attempts", "worker_host")
        return {k: getattr(self, k) for k in keys}




class TaskLease(Base):
    """A task message a live worker holds (reserved or running), and until when. The worker's heartbeat renews
    the leases of everything it holds every third of QMIND_LEASE_TTL_S and drops those it no longer holds.
    Unfinished work with no live lease and no message waiting in the queue lost its worker (or its message):
    the waiting submitter submits it again."""

    __tablename__ = "task_leases"

    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The Celery task name of the message, e.g. ``qmind.evaluate_candidate``."""
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    """What the message is about: the candidate id of an evaluation, ``run_id:goal_id:iteration`` of a
    generation."""
    worker: Mapped[str] = mapped_column(String(256))
    """Celery node name and process id of the worker that holds it, e.g. ``cpu1@host:1234``."""
    acquired_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
