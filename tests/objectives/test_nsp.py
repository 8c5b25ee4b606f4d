"""NSP and SOP pairs: [CLS] A [SEP] B [SEP] with segment ids, balanced labels, true/random/swapped segments."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetlm.objectives.nsp import make_sentence_pairs
from budgetlm.tokenizer import CLS, SEP


def blocks(B: int, T: int, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(10, 10_000, (B, T), generator=torch.Generator().manual_seed(seed))  # distinct-ish tokens
    ids[:, 0] = CLS
    return ids


@settings(max_examples=100, deadline=None)
@given(B=st.integers(2, 8), T=st.integers(5, 40), seed=st.integers(0, 2**31 - 1), task=st.sampled_from(["nsp", "sop"]))
def test_pair_layout(B, T, seed, task):
    ids = blocks(B, T, seed)
    starts = torch.rand(B, T, generator=torch.Generator().manual_seed(seed)) < 0.7
    out = make_sentence_pairs(ids, task, torch.Generator().manual_seed(seed), starts)
    L = (T - 3) // 2
    x, types, y = out["ids"], out["token_type_ids"], out["pair_labels"]
    assert x.shape == types.shape == out["word_starts"].shape == (B, 2 * L + 3) and y.shape == (B,)
    assert (x[:, 0] == CLS).all() and (x[:, L + 1] == SEP).all() and (x[:, -1] == SEP).all()
    assert (types[:, : L + 2] == 0).all() and (types[:, L + 2:] == 1).all()
    a, b = ids[:, 1:1 + L], ids[:, 1 + L:1 + 2 * L]
    for r in range(B):
        got_a, got_b = x[r, 1:1 + L], x[r, L + 2:2 * L + 2]
        if task == "nsp":
            assert torch.equal(got_a, a[r])
            assert torch.equal(got_b, b[r] if y[r] == 1 else b[(r + 1) % B])
        else:
            assert torch.equal(torch.stack([got_a, got_b]), torch.stack([a[r], b[r]] if y[r] == 0 else [b[r], a[r]]))
    assert out["word_starts"][:, [0, 1, L + 1, L + 2, -1]].all()


@pytest.mark.parametrize("task", ["nsp", "sop"])
def test_labels_are_balanced(task):
    n = sum(int(make_sentence_pairs(blocks(64, 16), task, torch.Generator().manual_seed(s))["pair_labels"].sum())
            for s in range(50))
    assert n / (64 * 50) == pytest.approx(0.5, abs=0.02)  # 3200 draws: standard error 0.009


def test_bad_inputs():
    with pytest.raises(ValueError, match="batch"):
        make_sentence_pairs(blocks(1, 16), "nsp", torch.Generator())
    with pytest.raises(ValueError, match="at least 5"):
        make_sentence_pairs(blocks(4, 4), "sop", torch.Generator())
    with pytest.raises(ValueError, match="unknown"):
        make_sentence_pairs(blocks(4, 16), "mlm", torch.Generator())
