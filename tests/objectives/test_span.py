"""T5 span corruption is a pure function: its properties are checked directly on random sequences."""

from __future__ import annotations

import statistics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.mlm import IGNORE_INDEX
from budgetlm.objectives.span import corrupt_spans, merge_spans, random_spans_noise_mask, sentinel_tokens
from budgetlm.tokenizer import CLS, PAD, SEP, SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)
VOCAB = 60
SENTINELS = list(range(VOCAB, VOCAB + 100))


@st.composite
def sequences(draw):
    """(ids (B, T) with [CLS] first, [SEP]s at random spots and trailing [PAD]s, special mask, cfg, seed)."""
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(N_SPECIAL, VOCAB, (B, T), generator=g)
    ids[torch.rand(B, T, generator=g) < draw(st.floats(0.0, 0.3))] = SEP
    ids[:, 0] = CLS
    for row in range(B):
        n_pad = draw(st.integers(0, T - 1))
        if n_pad:
            ids[row, T - n_pad:] = PAD
    cfg = ObjectiveConfig(noise_density=draw(st.floats(0.05, 0.5)), mean_span_length=draw(st.floats(1.0, 6.0)))
    cfg.validate()
    return ids, ids < N_SPECIAL, cfg, seed


def _rows(t: torch.Tensor, pad: int) -> list[list[int]]:
    out = []
    for row in t.tolist():
        while row and row[-1] == pad:
            row.pop()
        out.append(row)
    return out


@settings(max_examples=200, deadline=None)
@given(sequences())
def test_span_corruption_properties(case):
    ids, special, cfg, seed = case
    before = ids.clone()
    inputs, labels = corrupt_spans(ids, special, torch.Generator().manual_seed(seed), cfg, SENTINELS, SEP, PAD)
    assert torch.equal(ids, before), "the objective changed its input"
    for original, src, tgt in zip(_rows(ids, PAD), _rows(inputs, PAD), _rows(labels, IGNORE_INDEX)):
        used = [t for t in src if t in SENTINELS]
        assert used == SENTINELS[: len(used)], "sentinels must be <extra_id_0>, <extra_id_1>, ... in order, each once"
        assert [t for t in tgt if t in SENTINELS] == used, "the target lists the same sentinels in the same order"
        assert tgt[-1] == SEP and SEP not in tgt[:-1], "the target ends with one end-of-sequence"
        body = tgt[:-1]
        assert not any(t < N_SPECIAL for t in body), "a special token was corrupted"
        assert [t for t in src if t < N_SPECIAL] == [t for t in original if t < N_SPECIAL]
        # spans are non-empty and never overlap: each sentinel is followed by at least one token
        starts = [i for i, t in enumerate(body) if t in SENTINELS] + [len(body)]
        assert all(b - a >= 2 for a, b in zip(starts, starts[1:]))
        # density: exactly round(density * n) of the n ordinary tokens are dropped (at least 1, at most n - 1)
        n = sum(t >= N_SPECIAL for t in original)
        want = min(max(round(n * cfg.noise_density), 1), n - 1) if n >= 2 else 0
        assert len(body) - len(used) == want
        assert merge_spans(src, tgt, SENTINELS, SEP) == original, "inputs + targets must give back the original"


def test_default_span_statistics():
    """T5 defaults on 128-token blocks: 15% noise in spans of mean length ~3, ~3 + 1 tokens of input per span."""
    cfg = ObjectiveConfig()
    g = torch.Generator().manual_seed(0)
    lengths, densities = [], []
    for _ in range(200):
        mask = random_spans_noise_mask(127, cfg, g).tolist()
        densities.append(sum(mask) / len(mask))
        run = 0
        for m in mask + [False]:
            if m:
                run += 1
            elif run:
                lengths.append(run)
                run = 0
        assert not mask[0], "T5 starts with a kept run"
    assert statistics.mean(densities) == pytest.approx(0.15, abs=0.005)
    assert statistics.mean(lengths) == pytest.approx(19 / 6, abs=0.01)  # round(19 / 3) = 6 spans of 19 tokens
    assert min(lengths) >= 1 and max(lengths) > 5, "span lengths vary"


def test_span_corruption_example_and_sentinel_names():
    assert sentinel_tokens(3) == ["<extra_id_0>", "<extra_id_1>", "<extra_id_2>"]
    ids = torch.tensor([[CLS] + list(range(10, 30)) + [SEP]])
    inputs, labels = corrupt_spans(ids, ids < N_SPECIAL, torch.Generator().manual_seed(1), ObjectiveConfig(), SENTINELS, SEP, PAD)
    # 20 ordinary tokens: round(0.15 * 20) = 3 dropped in round(3 / 3) = 1 span
    assert inputs.shape[1] == 22 - 3 + 1  # the span becomes one sentinel
    assert labels.shape[1] == 1 + 3 + 1  # sentinel, the 3 tokens, EOS
    assert labels[0, 0] == SENTINELS[0] and labels[0, -1] == SEP


def test_too_few_sentinels_is_an_error():
    ids = torch.arange(N_SPECIAL, N_SPECIAL + 60).unsqueeze(0)
    cfg = ObjectiveConfig(noise_density=0.5, mean_span_length=1.0)
    with pytest.raises(ValueError, match="sentinels"):
        corrupt_spans(ids, ids < N_SPECIAL, torch.Generator().manual_seed(0), cfg, SENTINELS[:3], SEP, PAD)
