"""Batching: epochs cover every example once, resuming from state_dict replays the identical sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetlm.data.batches import BlockBatches, BlockDataset, EpochSampler, ExampleBatches, pad_batch, special_mask
from budgetlm.data.cache import build_or_load
from budgetlm.tokenizer import CLS, MASK, PAD, SEP, UNK


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), batch_size=st.integers(1, 17), seed=st.integers(0, 2**32 - 1), epochs=st.integers(1, 4))
def test_every_index_once_per_epoch(n, batch_size, seed, epochs):
    sampler = EpochSampler(n, batch_size, seed)
    drawn = []
    while len(drawn) < n * epochs:
        batch = sampler.next_indices()
        assert len(batch) == batch_size
        drawn.extend(batch.tolist())
    for e in range(epochs):
        assert sorted(drawn[e * n:(e + 1) * n]) == list(range(n)), f"epoch {e}"


def test_epochs_are_shuffled_differently_and_depend_on_seed():
    a = EpochSampler(50, 50, seed=0)
    e0, e1 = a.next_indices(), a.next_indices()
    assert not np.array_equal(e0, e1)
    assert not np.array_equal(e0, np.arange(50))
    assert not np.array_equal(EpochSampler(50, 50, seed=1).next_indices(), e0)
    assert np.array_equal(EpochSampler(50, 50, seed=0).next_indices(), e0)


def test_no_shuffle_is_in_order():
    s = EpochSampler(5, 3, seed=0, shuffle=False)
    assert [s.next_indices().tolist() for _ in range(3)] == [[0, 1, 2], [3, 4, 0], [1, 2, 3]]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), batch_size=st.integers(1, 11), seed=st.integers(0, 1000), before=st.integers(0, 12))
def test_state_dict_resumes_the_identical_sequence(n, batch_size, seed, before):
    original = EpochSampler(n, batch_size, seed)
    for _ in range(before):
        original.next_indices()
    state = original.state_dict()
    expected = [original.next_indices().tolist() for _ in range(8)]
    resumed = EpochSampler(n, batch_size, seed)
    resumed.load_state_dict(dict(state))
    assert [resumed.next_indices().tolist() for _ in range(8)] == expected


def test_state_dict_is_plain_json_data():
    import json

    s = EpochSampler(7, 3, seed=0)
    for _ in range(5):
        s.next_indices()
    state = s.state_dict()
    assert json.loads(json.dumps(state)) == state == {"epoch": 2, "pos": 1}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), batch_size=st.integers(1, 9), seed=st.integers(0, 1000), epochs=st.integers(1, 3))
def test_length_grouping_still_draws_every_index_once_per_epoch(n, batch_size, seed, epochs):
    lengths = np.random.default_rng(seed).integers(1, 60, n)
    sampler = EpochSampler(n, batch_size, seed, lengths=lengths)
    drawn = []
    while len(drawn) < n * epochs:
        drawn.extend(sampler.next_indices().tolist())
    for e in range(epochs):
        assert sorted(drawn[e * n:(e + 1) * n]) == list(range(n)), f"epoch {e}"


def test_length_grouping_cuts_padding_and_keeps_batches_random():
    n, bs = 4096, 16
    lengths = np.random.default_rng(0).integers(3, 64, n)
    grouped, plain = EpochSampler(n, bs, 1, lengths=lengths), EpochSampler(n, bs, 1)

    def padded_tokens(sampler):  # tokens of one epoch after padding each batch to its longest example
        return sum(int(lengths[b].max()) * len(b) for b in (sampler.next_indices() for _ in range(n // bs)))

    assert padded_tokens(grouped) < 0.7 * padded_tokens(plain)
    first = [EpochSampler(n, bs, 1, lengths=lengths).next_indices() for _ in range(2)]
    assert np.array_equal(*first)  # deterministic in (seed, epoch)
    longest_first = [lengths[EpochSampler(n, bs, s, lengths=lengths).next_indices()].max() for s in range(8)]
    assert len(set(longest_first)) > 2  # batch order is shuffled, not longest- (or shortest-) first


@settings(max_examples=40, deadline=None)
@given(n=st.integers(20, 400), batch_size=st.integers(2, 9), seed=st.integers(0, 1000))
def test_length_grouped_batches_stay_whole_after_the_first_epoch(n, batch_size, seed):
    """Each batch is one run of a length-sorted group (longest first), except the batch that straddles each
    epoch boundary when n is not a multiple of the batch: the next epoch must start its batches after it."""
    lengths = np.random.default_rng(seed).integers(1, 60, n)
    sampler = EpochSampler(n, batch_size, seed, lengths=lengths)
    epochs = 4
    batches = [sampler.next_indices() for _ in range(epochs * n // batch_size)]
    unsorted = sum(bool(np.any(np.diff(lengths[b]) > 0)) for b in batches)
    assert unsorted <= epochs


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 200), batch_size=st.integers(1, 7), seed=st.integers(0, 1000), before=st.integers(0, 40))
def test_length_grouped_sampler_resumes_the_identical_sequence(n, batch_size, seed, before):
    lengths = np.random.default_rng(seed).integers(1, 30, n)
    original = EpochSampler(n, batch_size, seed, lengths=lengths)
    for _ in range(before):
        original.next_indices()
    state = original.state_dict()
    expected = [original.next_indices().tolist() for _ in range(8)]
    resumed = EpochSampler(n, batch_size, seed, lengths=lengths)
    resumed.load_state_dict(dict(state))
    assert [resumed.next_indices().tolist() for _ in range(8)] == expected


def test_length_grouped_shards_split_one_global_batch():
    lengths = np.random.default_rng(3).integers(1, 50, 120)
    single = EpochSampler(120, 12, seed=3, lengths=lengths)
    shards = [EpochSampler(120, 4, seed=3, lengths=lengths) for _ in range(3)]
    for r, s in enumerate(shards):
        s.shard(r, 3)
    for _ in range(15):
        assert single.next_indices().tolist() == [i for s in shards for i in s.next_indices().tolist()]


@pytest.fixture
def token_cache(corpus_file, tiny_tokenizer_file, tmp_path):
    return build_or_load([corpus_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")


def test_blocks_start_with_cls_and_tile_the_stream(token_cache):
    ds = BlockDataset(token_cache, 16)
    assert len(ds) == token_cache.n_tokens // 15
    stream = token_cache.slice(0, token_cache.n_tokens)
    for i in (0, 1, len(ds) - 1):
        b = ds.block(i)
        assert b.shape == (16,) and b[0] == CLS
        assert np.array_equal(b[1:], stream[i * 15:(i + 1) * 15])
    batch = ds.batch([2, 0])
    assert batch.shape == (2, 16) and batch.dtype == torch.long
    assert torch.equal(batch[1], torch.from_numpy(ds.block(0)))


def test_corpus_shorter_than_one_block(tmp_path, tiny_tokenizer_file):
    p = tmp_path / "tiny.txt"
    p.write_text("the cat.\n")
    c = build_or_load([p], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    with pytest.raises(Exception, match="fewer than one block"):
        BlockDataset(c, 32)


def test_block_batches_resume(token_cache):
    ds = BlockDataset(token_cache, 16)
    a = BlockBatches(ds, 3, seed=5)
    for _ in range(4):
        next(a)
    state = a.state_dict()
    expected = [next(a)["ids"] for _ in range(5)]
    b = BlockBatches(ds, 3, seed=5)
    b.load_state_dict(state)
    for want in expected:
        assert torch.equal(next(b)["ids"], want)


def test_pad_batch_right_pads_with_a_mask():
    out = pad_batch([[2, 7, 3], [2, 3]], type_ids=[[0, 0, 0], [0, 1]])
    assert out["ids"].tolist() == [[2, 7, 3], [2, 3, PAD]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert out["token_type_ids"].tolist() == [[0, 0, 0], [0, 1, 0]]


def test_example_batches_carry_labels_aligned_with_examples():
    encoded = [[2, 10 + i, 3] for i in range(6)]
    labels = [i % 2 for i in range(6)]
    batches = ExampleBatches(encoded, labels, batch_size=4, seed=0)
    for _ in range(3):
        b = next(batches)
        ids = b["ids"][:, 1].tolist()
        assert b["labels"].tolist() == [(i - 10) % 2 for i in ids]


def test_special_mask_marks_the_five_specials():
    ids = torch.tensor([[PAD, UNK, CLS, SEP, MASK, 5, 99]])
    assert special_mask(ids).tolist() == [[True] * 5 + [False, False]]


def test_decoder_blocks_overlap_by_one_and_split_by_range(tmp_path, tiny_tokenizer_file):
    from budgetlm.data.cache import build_or_load

    (tmp_path / "t.txt").write_text("the cat sees a dog .\n\n" * 30)
    cache = build_or_load([tmp_path / "t.txt"], tiny_tokenizer_file, cache_dir=tmp_path / "c")
    stream = cache.slice(0, cache.n_tokens)
    ds = BlockDataset(cache, 9, start_token=None)
    assert len(ds) == (cache.n_tokens - 1) // 8
    assert (ds.block(0) == stream[:9]).all() and (ds.block(1) == stream[8:17]).all()  # last input token = next first
    split = cache.n_tokens * 9 // 10
    train, valid = BlockDataset(cache, 9, None, end=split), BlockDataset(cache, 9, None, begin=split)
    assert (valid.block(0) == stream[split:split + 9]).all()
    assert (len(train) - 1) * 8 + 9 <= split  # training blocks never reach the held-out tokens
