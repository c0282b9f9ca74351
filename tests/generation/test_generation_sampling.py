"""Per-row sampling: temperature -> top-k -> top-p -> seeded draw, reproducible per row whatever the batch."""

import numpy as np
import pytest
import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from workers.generation.sampling import apply_repetition_penalty, sample_rows, uniform_noise

VOCAB = 64


def logits_rows(rows, seed=0):
    return torch.randn((rows, VOCAB), generator=torch.Generator().manual_seed(seed)) * 3


def test_noise_depends_only_on_the_row_seed_step_and_token():
    tokens = torch.arange(VOCAB).repeat(3, 1)
    a = uniform_noise(torch.tensor([5, 6, 7]), 4, tokens)
    b = uniform_noise(torch.tensor([9, 5, 8]), 4, tokens)
    assert torch.equal(a[0], b[1])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], uniform_noise(torch.tensor([5]), 5, tokens[:1])[0])


def test_noise_is_uniform_on_the_open_unit_interval():
    u = uniform_noise(torch.arange(2000), 3, torch.arange(500).repeat(2000, 1)).flatten().numpy()
    assert 0 < u.min() and u.max() < 1
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    expected = u.size / 20
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)


def test_temperature_zero_is_greedy():
    logits = logits_rows(4)
    tokens = sample_rows(logits, torch.zeros(4), torch.arange(4), 0, top_k=50, top_p=0.9)
    assert torch.equal(tokens, logits.argmax(-1))


def test_a_row_draws_the_same_token_whatever_else_is_in_the_batch():
    logits = logits_rows(5)
    temps = torch.tensor([0.5, 0.7, 0.9, 1.3, 0.7])
    seeds = torch.tensor([11, 12, 13, 14, 15])
    together = sample_rows(logits, temps, seeds, 7, top_k=50, top_p=0.9)
    for i in range(5):
        alone = sample_rows(logits[i:i + 1], temps[i:i + 1], seeds[i:i + 1], 7, top_k=50, top_p=0.9)
        assert alone.item() == together[i].item()


def allowed_by_transformers(logits, temperature, top_k, top_p):
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    scores = TopKLogitsWarper(top_k)(None, scores)
    scores = TopPLogitsWarper(top_p)(None, scores)
    return torch.isfinite(scores[0])


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.5, 50, 0.9), (0.9, 50, 0.9), (1.5, 10, 0.5), (0.7, 3, 1.0)])
def test_draws_stay_inside_the_set_transformers_warpers_allow_in_the_same_order(temperature, top_k, top_p):
    logits = logits_rows(1, seed=3)
    allowed = allowed_by_transformers(logits, temperature, top_k, top_p)
    seen = set()
    for seed in range(400):
        token = sample_rows(logits, torch.tensor([temperature]), torch.tensor([seed]), 0, top_k=top_k, top_p=top_p)
        seen.add(int(token))
    assert seen <= set(torch.nonzero(allowed).flatten().tolist())
    assert len(seen) >= min(3, int(allowed.sum()))


def test_temperature_before_top_p_matters_and_is_honoured():
    # at T=0.5 the distribution is sharper, so top-p keeps fewer tokens than it would on the raw logits
    logits = torch.tensor([[3.0, 2.5, 2.0, 1.5, 1.0, 0.5] + [-10.0] * (VOCAB - 6)])
    sharp = allowed_by_transformers(logits, 0.5, 50, 0.9)
    raw_first = TopPLogitsWarper(0.9)(None, logits.clone())
    assert int(sharp.sum()) < int(torch.isfinite(raw_first[0]).sum())
    drawn = {int(sample_rows(logits, torch.tensor([0.5]), torch.tensor([s]), 0, top_k=50, top_p=0.9))
             for s in range(500)}
    assert drawn == set(torch.nonzero(sharp).flatten().tolist())


def test_draw_frequencies_follow_the_tempered_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    temperature = 0.8
    probs = torch.softmax(logits / temperature, -1)[0].numpy()
    n = 4000
    draws = [int(sample_rows(logits, torch.tensor([temperature]), torch.tensor([s]), 1, top_k=0, top_p=1.0))
             for s in range(n)]
    freq = np.bincount(draws, minlength=4) / n
    assert np.abs(freq - probs).max() < 4 * np.sqrt(probs.max() * (1 - probs.min()) / n)


def test_higher_temperature_spreads_the_draws():
    logits = logits_rows(1, seed=5)
    def distinct(t):
        return len({int(sample_rows(logits, torch.tensor([t]), torch.tensor([s]), 0, top_k=50, top_p=0.9))
                    for s in range(300)})
    assert distinct(0.5) < distinct(0.9) < distinct(1.5)


def test_repetition_penalty_follows_the_transformers_rule():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    seen = torch.tensor([[True, True, False]])
    assert torch.allclose(apply_repetition_penalty(logits, seen, 1.1), torch.tensor([[2.0 / 1.1, -2.2, 1.0]]))
