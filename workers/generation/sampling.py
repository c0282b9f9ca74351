"""Per-row sampling for batched decoding: temperature, then top-k, then top-p, then a seeded draw. Torch only.

Every row of a batch has its own temperature and seed. The draw is the Gumbel-max trick with noise computed from
(row seed, step, token id) by an integer hash rather than from a shared random generator, so a row's tokens depend
only on its own seed and logits: the same seed gives the same completion whatever else is in the batch, on CPU or
CUDA, and the whole step stays free of host synchronisation (it can be captured in a CUDA graph). Temperature 0
(or ``do_sample=False``) is greedy. Semantics match transformers' TemperatureLogitsWarper -> TopKLogitsWarper ->
TopPLogitsWarper -> multinomial, and vLLM's sampler (penalties, temperature, top-k/top-p, exponential race).
"""

from __future__ import annotations

import torch

_MASK32 = 0xFFFFFFFF
_MUL = 0x45D9F3B  # 32-bit integer hash multiplier (< 2**27, so int64 products never overflow)
_GOLDEN = 0x9E3779B1


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche hash on int64 tensors holding values in [0, 2**32)."""
    x = (((x >> 16) ^ x) * _MUL) & _MASK32
    x = (((x >> 16) ^ x) * _MUL) & _MASK32
    return (x >> 16) ^ x


def uniform_noise(seeds: torch.Tensor, step: torch.Tensor | int, token_ids: torch.Tensor) -> torch.Tensor:
    """U(0, 1) noise of shape ``token_ids`` ([B, K]) from row seeds [B] and the decoding step (24-bit resolution)."""
    h = _mix32(seeds.to(torch.int64) & _MASK32)
    step_t = torch.as_tensor(step, dtype=torch.int64, device=seeds.device)
    h = _mix32(h ^ ((step_t * _GOLDEN) & _MASK32))
    h = _mix32(h[:, None] ^ (token_ids.to(torch.int64) & _MASK32))
    return (h >> 8).to(torch.float32) * (1.0 / 2**24) + (0.5 / 2**24)


def gumbel_noise(seeds: torch.Tensor, step: torch.Tensor | int, token_ids: torch.Tensor) -> torch.Tensor:
    return -torch.log(-torch.log(uniform_noise(seeds, step, token_ids)))


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """transformers' rule on tokens already seen: positive logits divided by the penalty, negative multiplied."""
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def sample_rows(logits: torch.Tensor, temperatures: torch.Tensor, seeds: torch.Tensor, step: torch.Tensor | int, *,
                top_k: int, top_p: float) -> torch.Tensor:
    """Next token per row from [B, V] logits (already penalised): temperature -> top-k -> top-p -> seeded draw.

    ``temperatures`` [B] float (0 = greedy), ``seeds`` [B] int64. Top-p is computed over the top-k survivors, which
    is what applying it after top-k over the whole vocabulary amounts to.
    """
    logits = logits.float()
    vocab = logits.shape[-1]
    k = top_k if 0 < top_k < vocab else vocab
    sampled = temperatures > 0
    scaled = logits / torch.where(sampled, temperatures, torch.ones_like(temperatures))[:, None]
    values, indices = torch.topk(scaled, k, dim=-1)
    if top_p < 1.0:
        probs = torch.softmax(values, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs
        keep = before < top_p
        keep[:, 0] = True
        values = values.masked_fill(~keep, float("-inf"))
    noise = gumbel_noise(seeds, step, indices) * sampled[:, None].to(values.dtype)
    choice = torch.argmax(values + noise, dim=-1, keepdim=True)
    return indices.gather(1, choice).squeeze(1)
