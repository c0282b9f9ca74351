"""The fast batched path: a static KV cache and one decode step captured as a CUDA graph. Torch + transformers.

Why: decoding a 7B model at 3 to 48 rows is memory-bound, and transformers' ``generate`` loop spends several
milliseconds per step in Python, small kernels and a host synchronisation, about as long as the GPU needs to read
the weights once. Here the step (model forward with a static cache, repetition penalty, per-row sampling from
:mod:`sampling`, bookkeeping) has fixed shapes and no host synchronisation, so it is captured once and replayed;
the host looks at the tokens only every ``check_every`` steps (end-of-turn tokens, and stop sequences under the rule
of :mod:`stopping`: only after ``def create_ansatz``), and finished rows just ride along until the batch is done or
``max_new_tokens`` is reached. Attention in the decode step is :mod:`gqa_attention` (reads the cache once instead
of copying it per query head).

On CPU (tests) the same step runs eagerly, so the logic is checked there against the ``generate`` engine.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Sequence

import torch
from transformers import StaticCache

from .decoding import (
    DecodeStats,
    RowOutput,
    SamplingSpec,
    eos_token_ids,
    finish_row,
    reached_stop,
    stop_window,
)
from .gqa_attention import register as gqa_attention_register
from .sampling import apply_repetition_penalty, sample_rows


class GraphDecoder:
    """Decodes batches of left-padded rows for one model; keeps its cache and graph while the shapes repeat."""

    def __init__(self, model, tokenizer, *, cuda_graph: bool | None = None, compile: bool = False,
                 check_every: int = 16, length_bucket: int = 256, gqa_attention: bool = True) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.attention = gqa_attention_register() if gqa_attention else None
        self.device = next(model.parameters()).device
        self.cuda_graph = (self.device.type == "cuda") if cuda_graph is None else cuda_graph
        self.compile, self.check_every, self.length_bucket = compile, check_every, length_bucket
        self._key = None
        self._graph = None
        self.cache = None
        # transformers >= 5.2x renamed forward's past_key_values to cache (the old name still works, with a warning)
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._cache_arg = "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"

    # ---- state -----------------------------------------------------------------------------------------------
    def _allocate(self, batch: int, max_len: int, vocab: int, spec: SamplingSpec, eos: Sequence[int]) -> None:
        key = (batch, max_len, spec.max_new_tokens, spec.top_k, spec.top_p, spec.repetition_penalty,
               spec.min_new_tokens, tuple(eos))
        if key == self._key and self.cache is not None:
            self.cache.reset()
            return
        self._graph = None
        self.cache = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        d = self.device
        self.cache = StaticCache(config=self.model.config, max_cache_len=max_len)
        self.tok = torch.zeros((batch, 1), dtype=torch.long, device=d)
        self.pos = torch.zeros((batch, 1), dtype=torch.long, device=d)
        self.cpos = torch.zeros((1,), dtype=torch.long, device=d)
        self.step = torch.zeros((1,), dtype=torch.long, device=d)
        self.pad_mask = torch.zeros((batch, max_len), dtype=torch.bool, device=d)
        self.arange = torch.arange(max_len, device=d)
        self.out = torch.zeros((batch, spec.max_new_tokens), dtype=torch.long, device=d)
        self.temps = torch.zeros((batch,), dtype=torch.float32, device=d)
        self.seeds = torch.zeros((batch,), dtype=torch.long, device=d)
        self.seen = (torch.zeros((batch, vocab), dtype=torch.bool, device=d)
                     if spec.repetition_penalty != 1.0 else None)
        self.eos_mask = torch.zeros((vocab,), dtype=torch.bool, device=d)
        if eos:
            self.eos_mask[torch.tensor(list(eos), device=d)] = True
        self.spec = spec
        self._key = key

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.seen is not None:
            logits = apply_repetition_penalty(logits, self.seen, self.spec.repetition_penalty)
        if self.spec.min_new_tokens > 0:
            early = (self.step < self.spec.min_new_tokens)[:, None] & self.eos_mask[None, :]
            logits = logits.masked_fill(early, float("-inf"))
        return sample_rows(logits, self.temps, self.seeds, self.step, top_k=self.spec.top_k, top_p=self.spec.top_p)

    def _record(self, nxt: torch.Tensor) -> None:
        batch = nxt.shape[0]
        self.out.scatter_(1, self.step.expand(batch, 1), nxt[:, None])
        self.tok.copy_(nxt[:, None])
        if self.seen is not None:
            self.seen.scatter_(1, nxt[:, None], True)
        self.step.add_(1)

    def _decode_step(self) -> None:
        mask = (self.pad_mask & (self.arange <= self.cpos))[:, None, None, :]
        out = self.model(input_ids=self.tok, position_ids=self.pos, cache_position=self.cpos, attention_mask=mask,
                         use_cache=True, **{self._cache_arg: self.cache})
        self._record(self._sample(out.logits[:, -1, :]))
        self.pos.add_(1)
        self.cpos.add_(1)

    def _prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        _batch, length = input_ids.shape
        real = attention_mask.bool()
        self.pad_mask.zero_()
        self.pad_mask[:, :length] = real
        self.pad_mask[:, length:] = True
        q = torch.arange(length, device=self.device)
        causal = self.arange[None, :] <= q[:, None]
        diagonal = self.arange[None, :] == q[:, None]  # pad queries attend to themselves: no all-masked rows
        mask = (self.pad_mask[:, None, None, :] & causal[None, None]) | diagonal[None, None]
        positions = (real.long().cumsum(-1) - 1).clamp_min(0)
        out = self.model(input_ids=input_ids, position_ids=positions, attention_mask=mask, cache_position=q,
                         use_cache=True, logits_to_keep=1, **{self._cache_arg: self.cache})
        self.step.zero_()
        if self.seen is not None:
            counts = torch.zeros(self.seen.shape, dtype=torch.int32, device=self.device)
            counts.scatter_add_(1, input_ids, real.int())  # pad positions add nothing
            self.seen.copy_(counts > 0)
        self._record(self._sample(out.logits[:, -1, :]))
        self.pos.copy_(real.long().sum(-1, keepdim=True))
        self.cpos.fill_(length)

    def _cache_counters(self) -> list[torch.Tensor]:
        """Per-layer write positions kept as tensors inside the cache (empty for caches that use cache_position)."""
        layers = getattr(self.cache, "layers", [])
        return [layer.cumulative_length for layer in layers
                if isinstance(getattr(layer, "cumulative_length", None), torch.Tensor)]

    def _run_and_rewind(self, step, times: int = 2) -> None:
        """Run ``step`` for real (warm-up, compilation) and put every piece of state it advanced back, including the
        cache's own write counters (transformers 5.x StaticLayer writes at its cumulative_length, not cache_position).
        The K/V it wrote sit at positions the next real steps overwrite before reading them."""
        state = [self.tok, self.pos, self.cpos, self.step, self.out] + self._cache_counters()
        if self.seen is not None:
            state.append(self.seen)
        saved = [t.clone() for t in state]
        for _ in range(times):
            step()
        for tensor, value in zip(state, saved):
            tensor.copy_(value)

    def _capture(self) -> None:
        step = self._decode_step
        if self.compile:
            step = torch.compile(step, fullgraph=False, dynamic=False)  # fusion only; the graph is captured below
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            self._run_and_rewind(step)  # warm-up (and compile) outside the graph, as capture requires
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # records the kernels; nothing runs, so no state moves
            step()
        self._graph = graph

    @contextlib.contextmanager
    def _attention_impl(self):
        """Our GQA decode attention while this decoder runs the model (captured into the graph), then restored."""
        if self.attention is None:
            yield
            return
        config = self.model.config
        saved = config._attn_implementation
        config._attn_implementation = self.attention
        try:
            yield
        finally:
            config._attn_implementation = saved

    # ---- public ----------------------------------------------------------------------------------------------
    def decode_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, spec: SamplingSpec, *,
                   eos_ids: Sequence[int], tokenizer=None) -> tuple[list[list[int]], DecodeStats]:
        """Generated ids per row (left-padded inputs). Rows stop at an end-of-turn id or, with a tokenizer, an
        effective stop sequence (:func:`decoding.reached_stop`); the batch stops when every row has (checked every
        ``check_every`` steps) or at max_new_tokens."""
        if spec.stop and tokenizer is None:
            raise ValueError("stop sequences need the tokenizer")
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        batch, length = input_ids.shape
        max_len = -(-(length + spec.max_new_tokens) // self.length_bucket) * self.length_bucket
        vocab = self.model.get_output_embeddings().weight.shape[0]
        eos = set(eos_ids)
        start = time.perf_counter()
        with torch.inference_mode(), self._attention_impl():
            self._allocate(batch, max_len, vocab, spec, sorted(eos))
            self.temps.copy_(spec.row_temperatures(self.device))
            self.seeds.copy_(spec.row_seeds(self.device))
            self._prefill(input_ids, attention_mask)
            if self.cuda_graph and self._graph is None and spec.max_new_tokens > 1:
                self._capture()
            done = [False] * batch
            checked, steps = 0, 1
            overlap = stop_window(spec.stop)  # a stop completed in this block may have begun before it
            while steps < spec.max_new_tokens:
                for _ in range(min(self.check_every, spec.max_new_tokens - steps)):
                    if self._graph is not None:
                        self._graph.replay()
                    else:
                        self._decode_step()
                    steps += 1
                first = max(0, checked - overlap)
                block = self.out[:, first:steps].tolist()  # one host sync per check
                for b in range(batch):
                    if done[b]:
                        continue
                    new = block[b][checked - first:]
                    done[b] = (any(t in eos for t in new) and steps > spec.min_new_tokens) or bool(
                        spec.stop and reached_stop(tokenizer, block[b], lambda b=b, n=steps: self.out[b, :n].tolist(),
                                                   spec.stop, after_definition=spec.stop_after_definition))
                checked = steps
                if all(done):
                    break
            generated = self.out[:, :steps].tolist()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        stats = DecodeStats(rows=batch, prompt_tokens=int(attention_mask.sum()), steps=steps,
                            seconds=time.perf_counter() - start,
                            engine="graph" if self._graph is not None else "static")
        return generated, stats

    def decode(self, texts: Sequence[str], spec: SamplingSpec, *, eos_ids: Sequence[int] | None = None,
               ) -> tuple[list[RowOutput], DecodeStats]:
        """All rows in one batched decode; returns one :class:`RowOutput` per text."""
        tok = self.tokenizer
        eos = list(eos_ids) if eos_ids is not None else eos_token_ids(self.model, tok)
        enc = tok(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
        generated, stats = self.decode_ids(enc["input_ids"], enc["attention_mask"], spec, eos_ids=eos, tokenizer=tok)
        rows = [finish_row(g, tok, stop=spec.stop, eos_ids=eos, after_definition=spec.stop_after_definition)
                for g in generated]
        stats.completion_tokens = sum(r.tokens for r in rows)
        return rows, stats
