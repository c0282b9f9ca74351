"""Batched decoding of many (prompt, temperature) rows in one model call. Torch and transformers only.

Two engines share :mod:`sampling` (so the same seeds give the same tokens in both):

- ``generate``: transformers' ``model.generate`` with ``do_sample=False`` and one logits processor of ours,
  :class:`RowSampler`, which draws each row's token (per-row temperature, top-k, top-p, seeded draw) and returns
  scores whose argmax is that token. generate's own repetition-penalty processor runs before it; generate adds no
  warpers of its own (they exist only with ``do_sample=True``), so the order is exactly penalty -> temperature ->
  top-k -> top-p. Rows stop on their own at an effective stop sequence (:class:`StopAfterDefinition`, the rule of
  :mod:`stopping`). Works everywhere (the CPU path, and a reference on CUDA, optionally with its static cache).
- ``graph`` (:mod:`graph_decoder`): a static KV cache and a decode loop of our own whose step (model forward +
  sampling + bookkeeping) is captured once as a CUDA graph; stop sequences are checked every few steps on the host.

This module imports nothing else of the project, so the benchmark can use it on a GPU host without qiskit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from .sampling import sample_rows
from .stopping import first_effective_stop


@dataclasses.dataclass(frozen=True)
class SamplingSpec:
    """Sampling settings of one batched call; per-row lists are as long as the batch."""

    temperatures: Sequence[float]
    seeds: Sequence[int]
    top_k: int = 50
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    max_new_tokens: int = 1024
    min_new_tokens: int = 0
    """Suppress end-of-turn tokens until this many were generated (benchmarks force exact lengths with it)."""
    stop: Sequence[str] = ()
    stop_after_definition: bool = True
    """A stop sequence counts only after ``def create_ansatz`` (:mod:`stopping`); False: wherever it occurs."""
    do_sample: bool = True

    def row_temperatures(self, device) -> torch.Tensor:
        temps = [float(t) if self.do_sample else 0.0 for t in self.temperatures]
        return torch.tensor(temps, dtype=torch.float32, device=device)

    def row_seeds(self, device) -> torch.Tensor:
        return torch.tensor([int(s) & 0x7FFFFFFF for s in self.seeds], dtype=torch.int64, device=device)


@dataclasses.dataclass(frozen=True)
class RowOutput:
    """One decoded row."""

    text: str
    """The completion, cut before the first effective stop sequence, special tokens removed."""
    tokens: int
    """Completion tokens generated for this row (up to and including the one that completed the stop sequence)."""
    finish_reason: str
    """stop, eos or length."""


@dataclasses.dataclass
class DecodeStats:
    """What one batched call cost."""

    rows: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    steps: int = 0
    seconds: float = 0.0
    engine: str = ""


def finish_row(token_ids: Sequence[int], tokenizer, *, stop: Sequence[str], eos_ids: Sequence[int],
               after_definition: bool = True) -> RowOutput:
    """Cut a row's generated ids at the first end-of-turn token and its text before the first effective stop
    sequence (:func:`stopping.first_effective_stop`)."""
    ids = list(token_ids)
    eos = set(eos_ids)
    end = next((i for i, t in enumerate(ids) if t in eos), None)
    reason = "length"
    if end is not None:
        ids, reason = ids[:end], "eos"
        used = end + 1
    else:
        used = len(ids)

    def first_stop(part: Sequence[int]) -> int:
        return first_effective_stop(tokenizer.decode(part, skip_special_tokens=True), stop,
                                    after_definition=after_definition)

    text = tokenizer.decode(ids, skip_special_tokens=True)
    cut = first_effective_stop(text, stop, after_definition=after_definition)
    if cut >= 0:
        lo, hi = 1, len(ids)  # smallest prefix whose text already contains an effective stop sequence
        while lo < hi:
            mid = (lo + hi) // 2
            if first_stop(ids[:mid]) >= 0:
                hi = mid
            else:
                lo = mid + 1
        return RowOutput(text[:cut], lo, "stop")
    return RowOutput(text, used, reason)


def stop_window(stop: Sequence[str]) -> int:
    """Tokens of a row's tail in which a stop sequence completed by the newest token must show: every token of an
    ASCII stop adds at least one character, plus a margin for a first token that decodes differently alone (a
    split UTF-8 character, a SentencePiece word start)."""
    return max((len(s) for s in stop), default=0) + 16


def reached_stop(tokenizer, tail: Sequence[int], whole: Callable[[], Sequence[int]], stop: Sequence[str], *,
                 after_definition: bool = True) -> bool:
    """Whether a row being decoded has reached an effective stop sequence. Cheap on most steps: only ``tail`` (the
    row's last :func:`stop_window` ids) is decoded; when a stop sequence shows there, ``whole()`` (all the row's
    generated ids) is decoded and :func:`first_effective_stop` decides. Never true early."""
    if not any(s in tokenizer.decode(list(tail), skip_special_tokens=True) for s in stop):
        return False
    text = tokenizer.decode(list(whole()), skip_special_tokens=True)
    return first_effective_stop(text, stop, after_definition=after_definition) >= 0


class StopAfterDefinition(StoppingCriteria):
    """Per-row stop sequences for ``generate`` under the rule of :mod:`stopping` (replaces ``stop_strings=``): a row
    stops at the token that completes its first effective stop sequence; the others go on."""

    def __init__(self, tokenizer, stop: Sequence[str], prompt_length: int, *, after_definition: bool = True) -> None:
        self.tokenizer, self.stop, self.prompt_length = tokenizer, tuple(stop), prompt_length
        self.after_definition = after_definition
        self.window = stop_window(self.stop)
        self.done: list[bool] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        generated = input_ids[:, self.prompt_length:]
        if self.done is None or len(self.done) != generated.shape[0]:
            self.done = [False] * generated.shape[0]
        tails = generated[:, -self.window:].tolist()  # one host sync per step (generate makes one anyway)
        for b, tail in enumerate(tails):
            if not self.done[b]:
                self.done[b] = reached_stop(self.tokenizer, tail, lambda b=b: generated[b].tolist(), self.stop,
                                            after_definition=self.after_definition)
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


def eos_token_ids(model, tokenizer, extra_tokens: Sequence[str] = ()) -> list[int]:
    """End-of-turn ids: the generation config's eos ids, the tokenizer's eos, and named extra tokens."""
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, tokenizer.eos_token_id):
        if value is None:
            continue
        ids.extend(value if isinstance(value, (list, tuple)) else [value])
    vocab = tokenizer.get_vocab()
    ids.extend(vocab[t] for t in extra_tokens if t in vocab)
    return sorted({int(i) for i in ids})


class RowSampler(LogitsProcessor):
    """Draws each row's next token (temperature -> top-k -> top-p -> seeded draw) and returns scores whose argmax
    is that token; use with ``do_sample=False`` so generate adds no warpers of its own."""

    def __init__(self, spec: SamplingSpec, prompt_length: int, device, eos_ids: Sequence[int] = ()) -> None:
        self.spec, self.prompt_length = spec, prompt_length
        self.temperatures = spec.row_temperatures(device)
        self.seeds = spec.row_seeds(device)
        self.eos = torch.tensor(list(eos_ids), dtype=torch.long, device=device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_length
        scores = scores.float()
        if step < self.spec.min_new_tokens and self.eos.numel():
            scores = scores.index_fill(1, self.eos, float("-inf"))
        tokens = sample_rows(scores, self.temperatures, self.seeds, step, top_k=self.spec.top_k,
                             top_p=self.spec.top_p)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, tokens[:, None], 0.0)


def generate_ids(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, spec: SamplingSpec, *,
                 eos_ids: Sequence[int], pad_token_id: int, tokenizer=None, static_cache: bool = False,
                 compile: bool = False) -> tuple[list[list[int]], DecodeStats]:
    """Generated ids per row from ONE ``model.generate`` call (left-padded inputs, per-row temperature and seed).
    Stop sequences need the tokenizer (:class:`StopAfterDefinition`, one per call, stops each row on its own)."""
    device = next(model.parameters()).device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    prompt_length = input_ids.shape[1]
    kwargs = {}
    if static_cache:
        kwargs["cache_implementation"] = "static"
        if not compile:
            kwargs["disable_compile"] = True
    if spec.stop:
        if tokenizer is None:
            raise ValueError("stop sequences need the tokenizer")
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopAfterDefinition(
            tokenizer, spec.stop, prompt_length, after_definition=spec.stop_after_definition)])
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
            max_new_tokens=spec.max_new_tokens, repetition_penalty=spec.repetition_penalty,
            logits_processor=LogitsProcessorList([RowSampler(spec, prompt_length, device, eos_ids)]),
            eos_token_id=list(eos_ids) or None, pad_token_id=pad_token_id, temperature=None, top_p=None,
            top_k=None, **kwargs,
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    generated = out[:, prompt_length:].tolist()
    stats = DecodeStats(rows=len(generated), prompt_tokens=int(attention_mask.sum()),
                        steps=len(generated[0]) if generated else 0, seconds=time.perf_counter() - start,
                        engine="generate-static" if static_cache else "generate")
    return generated, stats


def generate_rows(model, tokenizer, texts: Sequence[str], spec: SamplingSpec, *, static_cache: bool = False,
                  compile: bool = False, eos_ids: Sequence[int] | None = None,
                  ) -> tuple[list[RowOutput], DecodeStats]:
    """All rows in ONE ``model.generate`` call (left padding; one row per text, temperature and seed per row)."""
    eos = list(eos_ids) if eos_ids is not None else eos_token_ids(model, tokenizer)
    enc = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    generated, stats = generate_ids(model, enc["input_ids"], enc["attention_mask"], spec, eos_ids=eos,
                                    pad_token_id=tokenizer.pad_token_id, tokenizer=tokenizer,
                                    static_cache=static_cache, compile=compile)
    rows = [finish_row(ids, tokenizer, stop=spec.stop, eos_ids=eos + [tokenizer.pad_token_id],
                       after_definition=spec.stop_after_definition) for ids in generated]
    stats.completion_tokens = sum(r.tokens for r in rows)
    return rows, stats
