"""The corpus of ``qmind train base``: (prompt, completion) pairs for the training goals only.

- procedural programs (``workers.generation.procedural.propose``) for every training goal at several mutation
  temperatures, each answering the seed's prompt rendered for its goal with an empty CONTEXT;
- with a store: its verified (``valid``) candidates of training goals, answering the prompt the loop asked
  (memory context included).

Completions are the code in a ```python block (what the SFT export writes and extraction reads back). Goals of
the held-out families and size (``training.base_config``) never enter, from either source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from concurrent.futures import ProcessPoolExecutor

from workers.evaluation.goals import get_goal, goal_from_spec
from workers.generation.prompts import SYSTEM_PROMPT, render_prompt

from .base_config import is_held_out
from .errors import TrainingError
from .export import assistant_content

TEMPERATURES = (0.3, 0.5, 0.7, 0.9, 1.2)


@dataclasses.dataclass(frozen=True)
class Example:
    goal: str
    prompt: str
    """The rendered user prompt."""
    completion: str
    """The assistant turn (code in a python block)."""
    source: str
    """procedural or store."""


def _programs(job: tuple[str, int, int]) -> list[str]:
    from workers.generation.procedural import propose

    name, count, seed = job
    goal = get_goal(name)
    codes = [propose(goal, TEMPERATURES[i % len(TEMPERATURES)], seed * 1_000_003 + i).code for i in range(count)]
    return list(dict.fromkeys(codes))  # distinct, in order


def procedural_examples(goal_names: list[str], per_goal: int, *, seed: int, workers: int = 0) -> list[Example]:
    goals = [get_goal(n) for n in goal_names]
    leaked = [g.name for g in goals if is_held_out(g)]
    if leaked:
        raise TrainingError(f"goals {leaked} are held out (family or size); they cannot be training goals")
    jobs = [(g.name, per_goal, seed) for g in goals]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            programs = list(pool.map(_programs, jobs))
    else:
        programs = [_programs(j) for j in jobs]
    return [Example(g.name, render_prompt(g, ""), assistant_content(code), "procedural")
            for g, codes in zip(goals, programs) for code in codes]


def store_examples(engine, goal_names: list[str], limit: int) -> list[Example]:
    """Verified candidates of the training goals, at most ``limit``, each with the rendered prompt it answered."""
    from db.session import session_scope

    from . import store_rows as Q

    filters = Q.StoreFilters(goals=tuple(goal_names), scorer_version=None)
    quality = Q.SFTQuality(max_error=float("inf"), allow_barren_plateau=True)
    with session_scope(engine) as session:
        rows = Q.fetch(session, Q.sft_statement(filters, quality))
    out, seen = [], set()
    for r in rows:
        if is_held_out(goal_from_spec(r["goal_spec"])) or (r["goal"], r["code_sha256"]) in seen:
            continue
        seen.add((r["goal"], r["code_sha256"]))
        out.append(Example(r["goal"], r["prompt"], assistant_content(r["code"]), "store"))
    return out[:limit]


def chat_pair(tokenizer, example: Example) -> tuple[str, str]:
    """(model input up to the assistant turn, the rest of the conversation) as the chat template renders the SFT
    export's row for this pair: the completion is the assistant turn with its end of turn (``<|im_end|>\n`` in
    ChatML), the very text SFT's loss covers (``training.sft.as_prompt_completion``)."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": example.prompt}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": example.completion}],
                                         tokenize=False)
    if not full.startswith(prompt):
        raise TrainingError("the chat template renders the prompt differently inside the conversation; the base "
                            "corpus needs a template whose generation prompt is a prefix of the rendered answer")
    return prompt, full[len(prompt):]


def describe(examples: list[Example]) -> dict:
    """What the corpus holds (for the checkpoint's training record)."""
    per_goal: dict[str, dict[str, int]] = {}
    for e in examples:
        entry = per_goal.setdefault(e.goal, {})
        entry[e.source] = entry.get(e.source, 0) + 1
    digest = hashlib.sha256()
    for e in examples:
        digest.update(f"{e.goal}\0{e.prompt}\0{e.completion}\0".encode())
    return {"examples": len(examples), "per_goal": per_goal, "sha256": digest.hexdigest()}
