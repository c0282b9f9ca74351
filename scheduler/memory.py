"""The memory context: what the loop has learned, written back into the prompt's CONTEXT field.

Built from evaluated candidates of this goal and of neighbouring sizes of the same family:

- the best candidates so far (code when it fits, a compact structural summary otherwise) with error, depth,
  parameters, two-qubit gates and barren-plateau decay;
- a diverse pick that is not just the top: the best candidate of each structural niche (two-qubit-gate count and
  depth buckets) not already shown, as MAP-Elites-style program-evolution systems do (e.g. FunSearch, AlphaEvolve);
- recent failures with their error messages, so the model stops repeating them;

all within a character budget. Sections are filled in that priority order and truncated, never cut mid-entry.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from workers.evaluation.text import clean_text

DEFAULT_BUDGET = 3000
MAX_CODE_CHARS = 900


@dataclasses.dataclass(frozen=True)
class MemoryRecord:
    """One evaluated candidate as the memory context sees it."""

    goal: str
    num_qubits: int
    status: str
    code: str
    code_sha256: str
    error: float | None = None
    """energy - exact energy (None when not scored)."""
    relative_error: float | None = None
    depth: int | None = None
    num_parameters: int | None = None
    two_qubit_gates: int | None = None
    gate_counts: dict = dataclasses.field(default_factory=dict)
    decay_rate: float | None = None
    has_barren_plateau: bool | None = None
    errors: tuple[str, ...] = ()
    iteration: int = 0
    fingerprint: str | None = None

    @property
    def scored(self) -> bool:
        return self.status == "valid" and self.error is not None and not self.has_barren_plateau


def _metrics(r: MemoryRecord) -> str:
    parts = [f"{r.goal}"]
    if r.error is not None:
        parts.append(f"error {r.error:.2e}")
    if r.depth is not None:
        parts.append(f"depth {r.depth}")
    if r.num_parameters is not None:
        parts.append(f"{r.num_parameters} params")
    if r.two_qubit_gates is not None:
        parts.append(f"{r.two_qubit_gates} two-qubit gates")
    if r.decay_rate is not None:
        parts.append(f"grad-variance decay {r.decay_rate:+.2f}/qubit")
    elif r.has_barren_plateau is False:
        parts.append("no barren plateau")
    return ", ".join(parts)


def structural_summary(r: MemoryRecord) -> str:
    gates = ", ".join(f"{k}×{v}" for k, v in sorted(r.gate_counts.items(), key=lambda kv: -kv[1]))
    return f"  gates: {gates or 'unknown'}"


def _entry(r: MemoryRecord, *, with_code: bool) -> str:
    head = f"- {_metrics(r)}"
    if with_code and len(r.code) <= MAX_CODE_CHARS:
        return f"{head}\n```python\n{r.code.strip()}\n```"
    return f"{head}\n{structural_summary(r)}"


def _niche(r: MemoryRecord) -> tuple[int, int]:
    tq = r.two_qubit_gates or 0
    depth = r.depth or 0
    return (int(math.log2(tq + 1)), int(math.log2(depth + 1)))


def select(records: Iterable[MemoryRecord], *, top: int = 3, diverse: int = 2, failures: int = 3
           ) -> tuple[list[MemoryRecord], list[MemoryRecord], list[MemoryRecord]]:
    """(best, diverse, recent failures), de-duplicated by fingerprint (or code hash)."""
    seen: set[str] = set()
    scored, failed = [], []
    for r in records:
        key = r.fingerprint or r.code_sha256
        if key in seen:
            continue
        seen.add(key)
        if r.scored:
            scored.append(r)
        elif r.status != "valid" or r.has_barren_plateau:
            failed.append(r)
    # best first: lowest relative error, then fewer two-qubit gates, then shallower
    scored.sort(key=lambda r: (r.relative_error if r.relative_error is not None else r.error,
                               r.two_qubit_gates or 0, r.depth or 0))
    best = scored[:top]
    shown_niches = {_niche(r) for r in best}
    picks: list[MemoryRecord] = []
    for r in scored[top:]:
        if len(picks) >= diverse:
            break
        if _niche(r) not in shown_niches:
            shown_niches.add(_niche(r))
            picks.append(r)
    failed.sort(key=lambda r: -r.iteration)
    return best, picks, failed[:failures]


def build_memory_context(records: Sequence[MemoryRecord], *, budget: int = DEFAULT_BUDGET, top: int = 3,
                         diverse: int = 2, failures: int = 3) -> str:
    """The CONTEXT text, at most ``budget`` characters. Empty history gives a short sentence."""
    best, picks, failed = select(records, top=top, diverse=diverse, failures=failures)
    if not (best or picks or failed):
        return "No candidates evaluated yet for this goal."
    sections: list[tuple[str, list[str]]] = []
    if best:
        sections.append(("Best ansätze so far (lower error is better; beat them with fewer two-qubit gates):",
                         [_entry(r, with_code=i == 0) for i, r in enumerate(best)]))
    if picks:
        sections.append(("Different structures worth varying:", [_entry(r, with_code=False) for r in picks]))
    if failed:
        lines = []
        for r in failed:
            why = "; ".join(r.errors) if r.errors else ("barren plateau" if r.has_barren_plateau else r.status)
            lines.append(f"- {r.status}: {clean_text(why, 240)}")  # candidate text: no escapes into the prompt
        sections.append(("Recent failures to avoid:", lines))
    text = ""
    for title, entries in sections:
        block = title
        for entry in entries:
            candidate = f"{block}\n{entry}"
            if len(text) + len(candidate) + 2 > budget:
                # a code block that does not fit is retried as its structural summary
                if "```" in entry:
                    r = best[0]  # only the top entry carries code
                    entry = _entry(r, with_code=False)
                    candidate = f"{block}\n{entry}"
                    if len(text) + len(candidate) + 2 <= budget:
                        block = candidate
                continue
            block = candidate
        if block != title and len(text) + len(block) + 2 <= budget:
            text = f"{text}\n\n{block}" if text else block
    return text or "No candidates evaluated yet for this goal."
