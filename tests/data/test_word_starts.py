"""Word starts in the token cache: from the fast tokenizer's word ids, so WordPiece, byte-level BPE and Unigram
all get whole words; stored beside the token shards, keyed into the cache hash, carried by pre-training batches."""

from __future__ import annotations

import numpy as np
import pytest

from budgetlm.data.batches import BlockBatches, BlockDataset
from budgetlm.data.cache import build_or_load
from budgetlm.tokenizer import SEP, train_tokenizer

TRAIN = ["The quick brown fox jumps over the lazy dog.", "A tokenizer-agnostic test, isn't it?"]
DOCS = TRAIN + ["Unseen: thequickfox overthedog."]  # unseen words of seen letters are split into pieces


@pytest.fixture(params=["wordpiece", "bpe", "unigram"])
def tok_file(request, tmp_path_factory):
    tok = train_tokenizer(request.param, 120, TRAIN * 20)
    path = tmp_path_factory.mktemp(request.param) / "tokenizer.json"
    tok.save(str(path))
    return path, tok


def test_word_starts_follow_word_ids(tok_file, tmp_path):
    path, tok = tok_file
    f = tmp_path / "docs.txt"
    f.write_text("\n\n".join(DOCS) + "\n")
    c = build_or_load([f], path, cache_dir=tmp_path / "cache", word_starts=True)
    expected_ids, expected_starts = [], []
    for doc in DOCS:
        e = tok.encode(doc, add_special_tokens=False)
        expected_ids += e.ids + [SEP]
        expected_starts += [i == 0 or e.word_ids[i] != e.word_ids[i - 1] for i in range(len(e.ids))] + [True]
    assert c.slice(0, c.n_tokens).tolist() == expected_ids
    assert c.slice_word_starts(0, c.n_tokens).tolist() == expected_starts
    assert (c.path / "words_00000.bin").stat().st_size == c.n_tokens
    # the unseen words are split into several tokens: the flags are not all True
    assert not all(expected_starts)


def test_word_starts_are_part_of_the_key(tmp_path, tiny_tokenizer_file):
    f = tmp_path / "docs.txt"
    f.write_text("\n\n".join(DOCS) + "\n")
    plain = build_or_load([f], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    words = build_or_load([f], tiny_tokenizer_file, cache_dir=tmp_path / "cache", word_starts=True)
    assert plain.path != words.path
    assert not plain.has_word_starts and words.has_word_starts
    assert np.array_equal(plain.slice(0, plain.n_tokens), words.slice(0, words.n_tokens))
    with pytest.raises(ValueError, match="without word starts"):
        plain.slice_word_starts(0, 3)


def test_blocks_carry_word_starts(tmp_path, tiny_tokenizer_file, corpus_text):
    f = tmp_path / "corpus.txt"
    f.write_text(corpus_text)
    c = build_or_load([f], tiny_tokenizer_file, cache_dir=tmp_path / "cache", word_starts=True)
    ds = BlockDataset(c, 16)
    batch = next(BlockBatches(ds, 4, seed=0))
    assert batch["word_starts"].shape == batch["ids"].shape and batch["word_starts"].dtype.is_floating_point is False
    assert batch["word_starts"][:, :2].all()  # [CLS] and the first text token (maybe a cut word) start words
    ws = ds.word_starts(3)
    assert ws[2:].tolist() == c.slice_word_starts(3 * ds.stride + 1, ds.stride - 1).tolist()
    plain = build_or_load([f], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    assert "word_starts" not in next(BlockBatches(BlockDataset(plain, 16), 4, seed=0))
