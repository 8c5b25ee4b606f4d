"""PMI-masking: n-grams matched on token ids for WordPiece, byte-level BPE and Unigram alike, longest match
first, overlaps resolved at random, matched n-grams masked whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.mlm import IGNORE_INDEX
from budgetlm.objectives.pmi import PmiNgrams, mask_pmi, pmi_units
from budgetlm.objectives.units import word_index
from budgetlm.tokenizer import CLS, MASK, SEP, SPECIAL_TOKENS, train_tokenizer

N_SPECIAL = len(SPECIAL_TOKENS)
TEXTS = ["we flew from new york to los angeles city last year", "a new yorker read the new york times",
         "los angeles city is big and new york is old"] * 30


@pytest.fixture(scope="module", params=["wordpiece", "bpe", "unigram"])
def tokenizer(request):
    return train_tokenizer(request.param, 150, TEXTS)


@pytest.fixture
def vocab_file(tmp_path):
    f = tmp_path / "pmi.txt"
    f.write_text("# test vocabulary\nnew york\t9\t5.0\nlos angeles\t5\t6.0\nlos angeles city\t4\t4.0\nyork times\t2\t3.0\n")
    return f


def encode_rows(tok, texts: list[str]):
    """(ids, word_starts) as the token cache + BlockDataset produce them: [CLS] text [SEP] [PAD]..."""
    T = max(len(tok.encode(t, add_special_tokens=False).ids) for t in texts) + 3
    ids = torch.zeros(len(texts), T, dtype=torch.long)
    starts = torch.ones(len(texts), T, dtype=torch.bool)
    for b, text in enumerate(texts):
        e = tok.encode(text, add_special_tokens=False)
        n = len(e.ids)
        ids[b, 0], ids[b, 1:n + 1], ids[b, n + 1] = CLS, torch.tensor(e.ids), SEP
        w = np.array(e.word_ids, dtype=np.float64)
        starts[b, 2:n + 1] = torch.from_numpy(w[1:] != w[:-1])
    return ids, starts


def matched_text(tok, ids, words, found):
    return sorted(tok.decode([int(t) for t, w in zip(ids, words) if s <= w < s + n]).replace(" ", "") for s, n in found)


def test_matches_whole_words_for_every_tokenizer_kind(tokenizer, vocab_file):
    ngrams = PmiNgrams.from_file(vocab_file, tokenizer)
    assert ngrams.size == 4 and ngrams.skipped == 0
    ids, starts = encode_rows(tokenizer, ["a new yorker read the new york times", "to los angeles city last"])
    words = word_index(starts, ids < N_SPECIAL)
    found = ngrams.matches(ids.numpy(), words.numpy())
    # "new yorker" is not "new york": the window's words must equal the n-gram's words
    assert matched_text(tokenizer, ids[0], words[0], found[0]) == ["newyork", "yorktimes"]
    assert matched_text(tokenizer, ids[1], words[1], found[1]) == ["losangeles", "losangelescity"]


def test_unknown_words_are_skipped(vocab_file, tmp_path):
    tok = train_tokenizer("wordpiece", 100, TEXTS)
    f = tmp_path / "unk.txt"
    f.write_text("new york\t9\t5.0\nnew zürich\t3\t2.0\n")  # 'ü' is not in the tiny vocabulary -> [UNK]
    ngrams = PmiNgrams.from_file(f, tok)
    assert (ngrams.size, ngrams.skipped) == (1, 1)


def test_longest_match_first_and_random_overlaps():
    # words 0..5; matches: (0, 2), (1, 2), (1, 3) -> the trigram 1..3 wins, then (0, 2) overlaps it
    units = pmi_units(6, [(0, 2), (1, 2), (1, 3)], np.array([0.5, 0.1, 0.9]))
    assert units.tolist() == [1, 0, 0, 0, 2, 3]
    # two overlapping bigrams: which one wins follows the random keys
    assert pmi_units(3, [(0, 2), (1, 2)], np.array([0.2, 0.8])).tolist() == [0, 0, 1]
    assert pmi_units(3, [(0, 2), (1, 2)], np.array([0.8, 0.2])).tolist() == [1, 0, 0]


def test_matched_ngrams_are_masked_whole(tokenizer, vocab_file):
    ngrams = PmiNgrams.from_file(vocab_file, tokenizer)
    ids, starts = encode_rows(tokenizer, ["we flew from new york to los angeles city last year"] * 8)
    special = ids < N_SPECIAL
    words = word_index(starts, special)
    found = ngrams.matches(ids.numpy(), words.numpy())[0]
    # "los angeles" lies inside the longer match "los angeles city"; "new york" stands alone
    longest = [(s, n) for s, n in found if not any(n2 > n and s2 < s + n and s < s2 + n2 for s2, n2 in found)]
    assert len(longest) == 2 and sorted(n for _, n in longest) == [2, 3]
    cfg = ObjectiveConfig(mask_rate=0.3)
    hit = 0
    for seed in range(20):
        _, labels = mask_pmi(ids, special, torch.Generator().manual_seed(seed), cfg, tokenizer.get_vocab_size(), MASK,
                             N_SPECIAL, word_starts=starts, ngrams=ngrams)
        chosen = labels != IGNORE_INDEX
        for b in range(ids.shape[0]):
            for s, n in longest:  # "new york" and "los angeles city"
                span = (words[b] >= s) & (words[b] < s + n)
                assert bool(chosen[b][span].all()) or not bool(chosen[b][span].any())
                hit += bool(chosen[b][span].all())
    assert hit > 0


def test_pmi_needs_its_vocabulary():
    ids = torch.tensor([[2, 10, 11, 3]])
    with pytest.raises(ValueError, match="vocabulary"):
        mask_pmi(ids, ids < N_SPECIAL, torch.Generator(), ObjectiveConfig(), 50, MASK, N_SPECIAL,
                 word_starts=torch.ones_like(ids, dtype=torch.bool))
