"""The one small interface every generator backend implements, and its result types.

A backend turns prompt requests into batches of candidates, three per prompt at temperatures 0.5 / 0.7 / 0.9 by
default (../shared/seed/MODEL-CONFIG.md). The Celery task and the discovery loop see only this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from workers.evaluation.goals import Goal

DEFAULT_TEMPERATURES: tuple[float, ...] = (0.5, 0.7, 0.9)


@dataclasses.dataclass(frozen=True)
class PromptRequest:
    """One prompt to answer: a goal and the memory context the discovery loop built for it."""

    goal: Goal
    memory_context: str = ""
    """Bounded text of what was learned so far (best candidates, failures); fills CONTEXT in the template."""
    seed: int = 0
    """Sampling seed; backends derive per-candidate seeds from it."""
    parents: tuple[str, ...] = ()
    """Code of good earlier candidates (the procedural backend mutates these)."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One completion and the code extracted from it."""

    temperature: float
    raw: str
    """The completion exactly as generated (always kept)."""
    code: str | None
    """The module that defines create_ansatz, or None when none could be extracted."""
    tokens: int = 0
    """Completion tokens."""
    extraction_error: str | None = None
    """Why no code could be extracted, when code is None."""
    seed: int | None = None
    """The seed this candidate was drawn with (``candidate_seed(request.seed, index)``)."""
    finish_reason: str | None = None
    """stop (a stop sequence), eos (end of turn), length (max_new_tokens) or None when unknown."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GenerationBatch:
    """All candidates for one prompt, with what made them."""

    goal_name: str
    system_prompt: str
    prompt: str
    """The rendered user prompt (the seed template with the goal's fields)."""
    memory_context: str
    candidates: tuple[Candidate, ...]
    generator: str
    """procedural, transformers, vllm or vllm-server."""
    model: str | None = None
    """Base model id or path (None for procedural)."""
    adapter: str | None = None
    """LoRA adapter path, if any."""
    settings: dict = dataclasses.field(default_factory=dict)
    """Sampling settings used (temperatures, top_p, top_k, repetition_penalty, max_new_tokens, stop, seed)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["candidates"] = [c.to_dict() for c in self.candidates]
        return out


class Generator(Protocol):
    """A backend. Loads its model lazily, once, on the first call."""

    name: str

    def generate(self, requests: Sequence[PromptRequest]) -> list[GenerationBatch]:
        """One batch per request, in order; all candidates of all requests in as few model calls as possible."""
        ...


def candidate_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th candidate of a request seeded with ``seed`` (stable across runs and hosts)."""
    digest = hashlib.sha256(f"qmind-candidate:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
