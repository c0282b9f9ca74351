"""Grouped-query attention for masked decoding steps, registered as a transformers attention implementation.

transformers' sdpa path expands the key/value heads to the query heads (``repeat_kv``, a copy) whenever a mask is
given on CUDA, because torch's fused kernels take GQA only without a mask. A static cache with left padding always
needs a mask, so each decode step would copy the whole cache seven times over (Qwen2.5-7B: 28 query / 4 KV heads)
before reading it; at 48 rows that costs more than reading the weights. For one query token per row this module
instead multiplies each KV head with its group of query heads directly, reading the cache once. Longer queries
(prefill) go to transformers' own sdpa function.
"""

from __future__ import annotations

import torch

NAME = "qmind_gqa_decode"


def gqa_decode_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """query [B, H, Q, D], key/value [B, Hkv, L, D], attention_mask bool [B, 1, Q, L] (True = attend).

    Returns ([B, Q, H, D], None) like transformers' attention functions."""
    batch, heads, q_len, dim = query.shape
    if q_len != 1 or attention_mask is None or attention_mask.dtype != torch.bool:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    kv_heads, length = key.shape[1], key.shape[2]
    group = heads // kv_heads
    scale = scaling if scaling is not None else dim**-0.5
    q = query.reshape(batch, kv_heads, group, dim)  # query head h uses KV head h // group
    scores = torch.matmul(q, key.transpose(-1, -2)).float() * scale  # [B, Hkv, G, L]
    mask = attention_mask[:, :, :, :length]  # [B, 1, 1, L]
    scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(probs, value)  # [B, Hkv, G, D]
    return out.reshape(batch, 1, heads, dim), None


def register() -> str:
    """Register the function with transformers (idempotent); returns its name for ``config._attn_implementation``."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, gqa_decode_attention)
    return NAME
