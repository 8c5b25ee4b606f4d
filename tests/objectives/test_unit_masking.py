"""Properties every unit-level masking strategy (whole-word, PMI, SpanBERT) must have, tested with hypothesis:
the token budget, specials never chosen, words masked whole, one 80/10/10 draw per unit, labels aligned."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetlm.objectives import MASKING_FUNCTIONS, WORD_MASKINGS
from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.mlm import IGNORE_INDEX
from budgetlm.objectives.pmi import PmiNgrams
from budgetlm.objectives.units import token_budget, word_index
from budgetlm.tokenizer import MASK, SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)
MAX_UNIT_WORDS = {"wwm": 1, "pmi": 5, "spanbert": ObjectiveConfig().span_max_words}


def ngrams_from(ids: torch.Tensor, words: torch.Tensor, count: int, seed: int) -> PmiNgrams:
    """A PMI vocabulary of n-grams cut out of the batch itself, so that matches are guaranteed."""
    rng = np.random.default_rng(seed)
    grams = []
    for _ in range(count):
        b = rng.integers(ids.shape[0])
        w, t = words[b].numpy(), ids[b].numpy()
        n_words = int(w.max()) + 1
        if n_words < 2:
            continue
        n = int(rng.integers(2, min(5, n_words) + 1))
        s = int(rng.integers(0, n_words - n + 1))
        grams.append([tuple(t[w == k].tolist()) for k in range(s, s + n)])
    return PmiNgrams.from_token_words(grams)


def masker(name: str, ids, words, seed: int):
    fn = MASKING_FUNCTIONS[name]
    if name == "pmi":
        fn = functools.partial(fn, ngrams=ngrams_from(ids, words, 6, seed))
    return fn


@st.composite
def word_batches(draw):
    B = draw(st.integers(1, 4))
    T = draw(st.integers(2, 64))
    vocab = draw(st.integers(N_SPECIAL + 2, 60))  # small: repeated words, so PMI n-grams recur
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(N_SPECIAL, vocab, (B, T), generator=g)
    ids[:, 0] = 2  # [CLS]
    ids[torch.rand(B, T, generator=g) < draw(st.floats(0.0, 0.2))] = 3  # [SEP] document ends
    special = ids < N_SPECIAL
    special |= torch.rand(B, T, generator=g) < draw(st.floats(0.0, 0.3))  # e.g. padding: never chosen either
    word_starts = torch.rand(B, T, generator=g) < draw(st.floats(0.2, 1.0))
    cfg = ObjectiveConfig(mask_rate=draw(st.floats(0.05, 0.6)), mask_token_prob=draw(st.floats(0.0, 1.0)))
    cfg.random_token_prob = draw(st.floats(0.0, 1.0 - cfg.mask_token_prob))
    cfg.validate()
    return ids, special, word_starts, cfg, vocab, seed


@pytest.mark.parametrize("name", sorted(WORD_MASKINGS))
@settings(max_examples=60, deadline=None)
@given(case=word_batches())
def test_unit_masking_properties(name, case):
    ids, special, word_starts, cfg, vocab, seed = case
    words = word_index(word_starts, special)
    fn = masker(name, ids, words, seed)
    before = (ids.clone(), special.clone(), word_starts.clone())
    inputs, labels = fn(ids, special, torch.Generator().manual_seed(seed), cfg, vocab, MASK, N_SPECIAL, word_starts=word_starts)
    assert all(torch.equal(a, b) for a, b in zip(before, (ids, special, word_starts)))  # pure
    assert inputs.shape == labels.shape == ids.shape and inputs.dtype == labels.dtype == torch.long
    chosen = labels != IGNORE_INDEX

    assert not (chosen & special).any(), "a special position was chosen"
    assert torch.equal(labels[chosen], ids[chosen]) and (labels[~chosen] == IGNORE_INDEX).all()
    assert torch.equal(inputs[~chosen], ids[~chosen])
    changed = chosen & (inputs != ids) & (inputs != MASK)
    assert ((inputs[changed] >= N_SPECIAL) & (inputs[changed] < vocab)).all()

    budget = token_budget(special, cfg.mask_rate)
    for b in range(ids.shape[0]):
        w = words[b]
        n_chosen = int(chosen[b].sum())
        if (w >= 0).any():
            assert n_chosen >= 1
            if n_chosen > budget[b]:  # only the fallback when no unit fits: one unit, i.e. consecutive words
                chosen_words = torch.unique(w[chosen[b]]).tolist()
                assert chosen_words == list(range(chosen_words[0], chosen_words[-1] + 1))
                assert len(chosen_words) <= MAX_UNIT_WORDS[name]
        else:
            assert n_chosen == 0
        for k in range(int(w.max()) + 1):
            in_word = w == k
            # a word is predicted whole or not at all, and its tokens share one 80/10/10 outcome
            assert bool(chosen[b][in_word].all()) or not bool(chosen[b][in_word].any())
            is_mask = inputs[b][in_word] == MASK
            if chosen[b][in_word].all():
                assert bool(is_mask.all()) or not bool(is_mask.any())


@pytest.mark.parametrize("name", sorted(WORD_MASKINGS))
@settings(max_examples=20, deadline=None)
@given(case=word_batches())
def test_same_seed_same_masks(name, case):
    ids, special, word_starts, cfg, vocab, seed = case
    fn = masker(name, ids, word_index(word_starts, special), seed)
    a = fn(ids, special, torch.Generator().manual_seed(seed), cfg, vocab, MASK, N_SPECIAL, word_starts=word_starts)
    b = fn(ids, special, torch.Generator().manual_seed(seed), cfg, vocab, MASK, N_SPECIAL, word_starts=word_starts)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def realistic_batch(seed: int, B: int = 32, T: int = 128, vocab: int = 400):
    """Words of 1-3 tokens (mostly 1, like WordPiece on English), documents separated by [SEP]."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(N_SPECIAL, vocab, (B, T), generator=g)
    ids[:, 0] = 2
    ids[torch.rand(B, T, generator=g) < 0.01] = 3
    r = torch.rand(B, T, generator=g)
    word_starts = r < 0.75  # ~1.33 tokens per word
    return ids, ids < N_SPECIAL, word_starts


@pytest.mark.parametrize("name", sorted(WORD_MASKINGS))
@pytest.mark.parametrize("rate", [0.15, 0.4])
def test_rate_and_80_10_10_over_many_draws(name, rate):
    cfg = ObjectiveConfig(mask_rate=rate)
    n_tokens = n_cand = 0
    units = {"mask": 0, "random": 0, "kept": 0}
    for draw in range(6):
        ids, special, word_starts = realistic_batch(draw)
        words = word_index(word_starts, special)
        fn = masker(name, ids, words, draw)
        inputs, labels = fn(ids, special, torch.Generator().manual_seed(100 + draw), cfg, 400, MASK, N_SPECIAL,
                            word_starts=word_starts)
        chosen = labels != IGNORE_INDEX
        n_tokens += int(chosen.sum())
        n_cand += int((~special).sum())
        # classify chosen words by their tokens (a unit may hold several words; each word has the unit's outcome)
        for b in range(ids.shape[0]):
            for k in torch.unique(words[b][chosen[b]]).tolist():
                tok = words[b] == k
                if (inputs[b][tok] == MASK).all():
                    units["mask"] += 1
                elif torch.equal(inputs[b][tok], ids[b][tok]):
                    units["kept"] += 1
                else:
                    units["random"] += 1
    assert n_tokens / n_cand == pytest.approx(rate, abs=0.01)
    total = sum(units.values())
    # words of one multi-word unit (PMI n-gram, span) share a draw, so the effective sample is smaller: 0.04
    assert units["mask"] / total == pytest.approx(0.8, abs=0.04)
    assert units["random"] / total == pytest.approx(0.1, abs=0.04)  # includes re-draws of the same ids
    assert units["kept"] / total == pytest.approx(0.1, abs=0.04)


def test_word_index_numbers_words_and_skips_specials():
    ids = torch.tensor([[2, 10, 11, 12, 3, 13, 14, 0]])
    special = ids < N_SPECIAL
    starts = torch.tensor([[1, 1, 0, 1, 1, 0, 1, 1]], dtype=torch.bool)
    # 13 follows [SEP], so it starts a word even though its flag says "continuation"
    assert word_index(starts, special).tolist() == [[-1, 0, 0, 1, -1, 2, 3, -1]]


def test_word_maskings_need_word_starts():
    ids = torch.tensor([[2, 10, 11, 3]])
    for name in WORD_MASKINGS:
        with pytest.raises(ValueError, match="word_starts"):
            MASKING_FUNCTIONS[name](ids, ids < N_SPECIAL, torch.Generator(), ObjectiveConfig(), 50, MASK, N_SPECIAL)
