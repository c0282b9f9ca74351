"""Where a completion ends: the seed's stop sequences, applied only once the answer's function has begun.

Why: the seed document (../shared/seed/MODEL-CONFIG.md) sets the stop sequences ["```\\n", "\\n\\n\\n"] to stop the
model once the answer's code is complete. Applied literally they end many answers before any code: PEP 8 puts two
blank lines between the imports and ``def create_ansatz`` (so "\\n\\n\\n" cuts right after the imports), and a bare
opening fence "```\\n" (no language tag) at the start of an answer matches "```\\n" itself. So a stop sequence counts
only where it lies after the start of the definition: the completion text before the stop's position contains
``def create_ansatz``. Before that, stop sequences are ignored and generation goes on; after it, the first stop ends
the completion (the closing fence of the code block, or the first "\\n\\n\\n" after the function in bare code).
``stop_after_definition=False`` (``QMIND_GEN_STOP_AFTER_DEFINITION``) restores the literal rule.

Every backend uses :func:`first_effective_stop`: ``decoding.finish_row`` (the final cut, both transformers
engines), ``decoding.StopAfterDefinition`` (per-row stopping inside ``generate``), the CUDA-graph decoder's host
check, and the vLLM backends' post-processing (vLLM's own ``stop`` cannot be conditional: see :func:`engine_stops`).

Pure Python: no torch, no vllm.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFINITION = "def create_ansatz"
_FENCES = ("```", "~~~")


def first_effective_stop(text: str, stops: Sequence[str], *, after_definition: bool = True) -> int:
    """Index in ``text`` of the first stop sequence that ends the completion, or -1 when none does.

    With ``after_definition`` (the default) a stop counts only when the text before it contains
    ``def create_ansatz``; without it, the first occurrence of any stop counts (the literal rule)."""
    start = 0
    if after_definition:
        found = text.find(DEFINITION)
        if found < 0:
            return -1
        start = found + len(DEFINITION)
    hits = [i for i in (text.find(s, start) for s in stops if s) if i >= 0]
    return min(hits) if hits else -1


def engine_stops(stops: Sequence[str], *, after_definition: bool = True) -> list[str]:
    """The stop strings to hand an engine that applies them unconditionally (vLLM's ``stop``).

    Literal rule: all of them. After the definition: only the stops that end a fenced block, anchored to a line
    start ("```\\n" becomes "\\n```\\n", the closing fence), since those are rare before the code; "\\n\\n\\n" and
    other stops are left to the post-processing (:func:`first_effective_stop` on the returned text), because PEP 8
    answers contain them before nearly every definition. The caller still checks what the engine stopped at:
    a fence before the definition (a bash block, a bare fence after prose) must not end the completion, so the
    caller continues it (see ``vllm_backend``)."""
    if not after_definition:
        return list(stops)
    anchored = ["\n" + s if not s.startswith("\n") else s for s in stops if s.lstrip("\n").startswith(_FENCES)]
    return list(dict.fromkeys(anchored))


def settle(text: str, reason: str, stops: Sequence[str], *, after_definition: bool = True,
           ) -> tuple[str, str] | None:
    """A completion returned by an engine with unconditional stop strings, made to follow the rule.

    ``text`` includes the stop string the engine stopped at (vLLM: ``include_stop_str_in_output``); ``reason`` is
    stop (a stop string), eos or length. Returns (text cut before its first effective stop, "stop"), or (text,
    reason) when it ended for another reason, or None when the engine stopped at a stop string that does not count
    yet (before the definition): then the completion must go on from ``text``."""
    cut = first_effective_stop(text, stops, after_definition=after_definition)
    if cut >= 0:
        return text[:cut], "stop"
    if reason == "stop" and after_definition:
        return None
    return text, reason
