"""SpanBERT spans: geometric lengths in words (mean 3.8 for p=0.2, max 10), inside segments, never overlapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.mlm import IGNORE_INDEX
from budgetlm.objectives.spanbert import geometric_lengths, mask_spans, span_units
from budgetlm.objectives.units import word_index
from budgetlm.tokenizer import MASK, SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)


def test_geometric_lengths_match_the_paper():
    u = np.random.default_rng(0).random(200_000)
    lengths = geometric_lengths(u, 0.2, 10)
    assert lengths.min() == 1 and lengths.max() == 10
    # P(l=k) = 0.2 * 0.8^(k-1) / (1 - 0.8^10): mean 3.79 ("3.8" in the paper), P(1) = 0.2237
    k = np.arange(1, 11)
    pmf = 0.2 * 0.8 ** (k - 1) / (1 - 0.8**10)
    assert lengths.mean() == pytest.approx((k * pmf).sum(), abs=0.02)
    assert np.bincount(lengths, minlength=11)[1:] / len(u) == pytest.approx(pmf, abs=0.005)
    assert (geometric_lengths(u[:100], 1.0, 10) == 1).all()


@st.composite
def rows(draw):
    T = draw(st.integers(2, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    special = rng.random(T) < draw(st.floats(0.0, 0.3))
    starts = rng.random(T) < draw(st.floats(0.3, 1.0))
    words = word_index(torch.from_numpy(starts)[None], torch.from_numpy(special)[None])[0].numpy()
    budget = draw(st.integers(1, T))
    n = 4 * budget + 16
    return words, special, budget, rng.random(n), rng.random(n), draw(st.sampled_from([0.2, 0.5, 1.0])), draw(st.integers(1, 10))


@settings(max_examples=200, deadline=None)
@given(rows())
def test_spans_are_word_ranges_inside_segments_within_budget(case):
    words, special, budget, u_len, u_start, p, max_words = case
    units = span_units(words, special, budget, u_len, u_start, p, max_words)
    assert (units[special] == -1).all()
    if words.max() < 0:
        assert (units == -1).all()
        return
    segment = np.cumsum(special)
    covered = int((units >= 0).sum())
    for u in range(int(units.max()) + 1):
        pos = np.flatnonzero(units == u)
        assert len(pos) > 0  # unit ids are dense
        span_words = np.unique(words[pos])
        # whole words, consecutive, at most max_words of them, all in one segment (no special inside)
        assert set(np.flatnonzero(np.isin(words, span_words))) == set(pos)
        assert (np.diff(span_words) == 1).all() and len(span_words) <= max_words
        assert len(np.unique(segment[pos])) == 1
    # spans never overlap: every token belongs to at most one unit by construction, so check the budget
    longest_word = int(np.bincount(words[words >= 0]).max())
    assert covered <= budget or (units.max() == 0 and covered <= longest_word)


def test_spans_are_longer_than_words():
    """Spans average several words, so far fewer units than whole-word masking for the same budget."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(N_SPECIAL, 500, (32, 128), generator=g)
    ids[:, 0] = 2
    special = ids < N_SPECIAL
    starts = torch.ones_like(ids, dtype=torch.bool)  # one token per word: span length in words == in tokens
    cfg = ObjectiveConfig(mask_rate=0.3, mask_token_prob=1.0, random_token_prob=0.0)
    inputs, labels = mask_spans(ids, special, g, cfg, 500, MASK, N_SPECIAL, word_starts=starts)
    chosen = (labels != IGNORE_INDEX).numpy()
    runs = [len(r) for row in chosen for r in np.split(row, np.flatnonzero(np.diff(row.astype(int)) != 0) + 1) if r[0]]
    assert 2.5 < np.mean(runs) < 6  # adjacent spans merge into one run, the last span of a row is cut short
    assert (inputs[labels != IGNORE_INDEX] == MASK).all()
