"""Training speed as the trainer sees it: seconds and input tokens per optimizer step, peak GPU memory.

A ``transformers.TrainerCallback`` (the trainer's own extension point): the run's config.yaml records what it
measured under ``throughput``, so the speed of a real ``qmind train sft`` run is kept beside its losses. Tokens
are the trainer's ``num_input_tokens_seen`` (every input id of the packed, padding-free batches); the first step
(allocator warm-up, kernel selection) is left out of ``tokens_per_s`` when there are later ones.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback


def _cuda():
    import torch

    return torch.cuda if torch.cuda.is_available() else None


class ThroughputCallback(TrainerCallback):
    """Times every optimizer step (CUDA synchronised) and counts its input tokens."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.tokens: list[int] = []
        self._start = 0.0
        self._seen = 0

    def on_train_begin(self, args, state, control, **kwargs):
        cuda = _cuda()
        if cuda is not None:
            cuda.reset_peak_memory_stats()

    def on_step_begin(self, args, state, control, **kwargs):
        cuda = _cuda()
        if cuda is not None:
            cuda.synchronize()
        self._start, self._seen = time.perf_counter(), int(state.num_input_tokens_seen or 0)

    def on_step_end(self, args, state, control, **kwargs):
        cuda = _cuda()
        if cuda is not None:
            cuda.synchronize()
        self.seconds.append(time.perf_counter() - self._start)
        self.tokens.append(int(state.num_input_tokens_seen or 0) - self._seen)

    def record(self) -> dict[str, Any]:
        """config.yaml's ``throughput``."""
        timed = slice(1, None) if len(self.seconds) > 1 else slice(None)
        seconds, tokens = sum(self.seconds[timed]), sum(self.tokens[timed])
        cuda = _cuda()
        return {
            "steps": len(self.seconds),
            "step_seconds": [round(s, 4) for s in self.seconds],
            "step_tokens": self.tokens,
            "tokens_per_s": tokens / seconds if seconds > 0 and tokens > 0 else None,
            "first_step_excluded": len(self.seconds) > 1,
            "peak_memory_gib": cuda.max_memory_allocated() / 2**30 if cuda is not None else None,
        }
