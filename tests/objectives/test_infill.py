"""BART text infilling and sentence permutation are pure functions: properties checked on random sequences."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.infill import infill, permute_sentences, sample_spans
from budgetlm.objectives.mlm import IGNORE_INDEX
from budgetlm.tokenizer import CLS, MASK, PAD, SEP, SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)
VOCAB = 60
FULL_STOP = 7


@st.composite
def sequences(draw):
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(N_SPECIAL, VOCAB, (B, T), generator=g)
    ids[torch.rand(B, T, generator=g) < 0.15] = FULL_STOP
    ids[torch.rand(B, T, generator=g) < draw(st.floats(0.0, 0.3))] = SEP
    ids[:, 0] = CLS
    for row in range(B):
        n_pad = draw(st.integers(0, T - 1))
        if n_pad:
            ids[row, T - n_pad:] = PAD
    cfg = ObjectiveConfig(infill_rate=draw(st.floats(0.05, 0.9)), poisson_lambda=draw(st.floats(0.2, 6.0)),
                          permute_sentences=draw(st.booleans()))
    cfg.validate()
    return ids, ids < N_SPECIAL, cfg, seed


def expands_to(source: list[int], original: list[int]) -> bool:
    """Can each [MASK] in `source` stand for a (possibly empty) run of ordinary tokens so that it equals `original`?"""
    reach = {0}  # positions of `original` reachable after consuming a prefix of `source`
    for token in source:
        if token == MASK:
            nxt = set()
            for i in sorted(reach):
                j = i
                nxt.add(j)
                while j < len(original) and original[j] >= N_SPECIAL:
                    j += 1
                    nxt.add(j)
            reach = nxt
        else:
            reach = {i + 1 for i in reach if i < len(original) and original[i] == token}
    return len(original) in reach


@settings(max_examples=200, deadline=None)
@given(sequences())
def test_infilling_properties(case):
    ids, special, cfg, seed = case
    before = ids.clone()
    inputs, labels = infill(ids, special, torch.Generator().manual_seed(seed), cfg, MASK, PAD, {FULL_STOP})
    assert torch.equal(ids, before), "the objective changed its input"
    assert torch.equal(labels, ids.masked_fill(ids == PAD, IGNORE_INDEX)), "the target is the original text"
    for row in range(ids.shape[0]):
        original = [t for t in ids[row].tolist() if t != PAD]
        source = [t for t in inputs[row].tolist() if t != PAD]
        n = sum(t >= N_SPECIAL for t in original)
        kept = [t for t in source if t >= N_SPECIAL]
        assert len(kept) == n - round(n * cfg.infill_rate), "exactly round(rate * n) ordinary tokens are masked"
        assert len(source) <= len(original)
        assert [t for t in source if t < N_SPECIAL and t != MASK] == [t for t in original if t < N_SPECIAL], \
            "special tokens are never masked or moved"
        if not cfg.permute_sentences:
            assert expands_to(source, original), "masks must stand for non-overlapping runs of the original"
        else:
            assert Counter(kept) <= Counter(t for t in original if t >= N_SPECIAL)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.floats(0.05, 0.95), st.floats(0.1, 8.0), st.integers(0, 2**31 - 1))
def test_sampled_spans_never_overlap(n, rate, lam, seed):
    cfg = ObjectiveConfig(infill_rate=rate, poisson_lambda=lam)
    breaks = frozenset(range(0, n, 7))
    spans = sample_spans(n, cfg, torch.Generator().manual_seed(seed), breaks)
    assert sum(length for _, length in spans) == round(n * rate)
    assert len(spans) <= max(round(n * rate), 0)
    end = 0
    for start, length in spans:
        assert start >= end and length >= 0 and start + length <= n
        assert not any(start < b < start + length for b in breaks), "a span crosses a break"
        end = start + length


def test_default_infilling_statistics():
    """BART defaults: 30% masked, Poisson(3) span lengths (mean of the non-empty ones ~3.16), some 0-length spans."""
    cfg = ObjectiveConfig()
    g = torch.Generator().manual_seed(0)
    lengths = [length for _ in range(300) for _, length in sample_spans(127, cfg, g)]
    assert sum(lengths) == 300 * round(127 * 0.3)
    zero = lengths.count(0) / len(lengths)
    assert 0.02 < zero < 0.09  # P(0) = e^-3 = 0.05
    assert statistics.mean(l for l in lengths if l) == pytest.approx(3.0 / (1 - 2.718281828 ** -3), abs=0.3)


def test_sentence_permutation_keeps_sentences_and_specials():
    A, B_, C = [10, 11, FULL_STOP], [12, FULL_STOP], [13, 14, 15]  # C has no full stop: it ends at the [SEP]
    row = [CLS] + A + B_ + C + [SEP] + A + B_ + [SEP]
    special = [t < N_SPECIAL for t in row]
    doc1 = {tuple(x + y + z) for x, y, z in itertools.permutations([A, B_, C])}
    doc2 = {tuple(A + B_), tuple(B_ + A)}
    seen = set()
    for seed in range(30):
        out = permute_sentences(row, special, {FULL_STOP}, torch.Generator().manual_seed(seed))
        assert [i for i, t in enumerate(out) if t < N_SPECIAL] == [i for i, t in enumerate(row) if t < N_SPECIAL]
        assert tuple(out[1:9]) in doc1 and tuple(out[10:15]) in doc2, "sentences stay whole, within their document"
        seen.add(tuple(out))
    assert len(seen) > 4, "sentences were never shuffled"
