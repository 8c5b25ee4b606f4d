"""Token cache: built once and reused, keyed by everything that produced it, packed as doc [SEP] doc [SEP] ..."""

from __future__ import annotations

import json

import numpy as np
import pytest

from budgetlm.data import cache as cache_mod
from budgetlm.data.cache import build_or_load, default_cache_dir
from budgetlm.errors import UserError
from budgetlm.tokenizer import SEP, encode_plain, train_tokenizer


@pytest.fixture
def docs_file(tmp_path):
    p = tmp_path / "docs.txt"
    p.write_text("The cat sees a dog.\n\nA big tree!\nThe old king.\n\nThe river.\n", encoding="utf-8")
    return p


def _stream(c) -> np.ndarray:
    return c.slice(0, c.n_tokens)


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("BUDGETLM_CACHE", str(tmp_path / "somewhere"))
    assert default_cache_dir() == tmp_path / "somewhere"


def test_stream_is_documents_separated_by_sep(docs_file, tiny_tokenizer_file, tiny_tokenizer, tmp_path):
    c = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    docs = ["The cat sees a dog.", "A big tree!\nThe old king.", "The river."]
    expected = [t for ids in encode_plain(tiny_tokenizer, docs) for t in ids + [SEP]]
    assert _stream(c).tolist() == expected
    assert c.meta["n_docs"] == 3
    assert c.meta["n_tokens"] == c.n_tokens == len(expected)
    assert (_stream(c) == SEP).sum() == 3


def test_small_vocab_is_stored_as_uint16(docs_file, tiny_tokenizer_file, tmp_path):
    c = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    assert c.meta["dtype"] == "uint16"
    assert c.shards[0].dtype == np.uint16
    assert (c.path / "shard_00000.bin").stat().st_size == 2 * c.n_tokens
    assert c.slice(0, 4).dtype == np.int64  # what batches see


def test_default_location_is_env_dir(docs_file, tiny_tokenizer_file, tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETLM_CACHE", str(tmp_path / "envcache"))
    c = build_or_load([docs_file], tiny_tokenizer_file)
    assert c.path.parent == tmp_path / "envcache"


def test_second_build_reuses_the_entry(docs_file, tiny_tokenizer_file, tmp_path, monkeypatch):
    first = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    mtime = (first.path / "meta.json").stat().st_mtime_ns

    def fail(*a, **k):
        raise AssertionError("the corpus was encoded again")

    monkeypatch.setattr(cache_mod, "_write_batch", fail)
    again = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    assert again.path == first.path
    assert (again.path / "meta.json").stat().st_mtime_ns == mtime
    assert np.array_equal(_stream(again), _stream(first))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.path.name]  # no temp dirs left behind


def test_changed_content_builds_a_new_entry(docs_file, tiny_tokenizer_file, tmp_path):
    a = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    docs_file.write_text("A completely different text.\n", encoding="utf-8")
    b = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    assert b.path != a.path
    assert b.n_tokens != a.n_tokens


def test_changed_tokenizer_builds_a_new_entry(docs_file, tiny_tokenizer_file, corpus_text, tmp_path):
    other = tmp_path / "other-tok" / "tokenizer.json"
    other.parent.mkdir()
    train_tokenizer("wordpiece", 60, corpus_text.split("\n\n")).save(str(other))
    a = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    b = build_or_load([docs_file], other, cache_dir=tmp_path / "cache")
    assert a.path != b.path
    assert b.meta["vocab_size"] != a.meta["vocab_size"]


def test_changed_doc_split_builds_a_new_entry(docs_file, tiny_tokenizer_file, tmp_path):
    a = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache", doc_split="blank")
    b = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache", doc_split="line")
    assert a.path != b.path
    assert (a.meta["n_docs"], b.meta["n_docs"]) == (3, 4)
    assert (_stream(b) == SEP).sum() == 4


def test_same_content_elsewhere_shares_the_entry(docs_file, tiny_tokenizer_file, tmp_path):
    copy = tmp_path / "copy" / docs_file.name
    copy.parent.mkdir()
    copy.write_bytes(docs_file.read_bytes())
    a = build_or_load([docs_file], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    b = build_or_load([copy], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    assert a.path == b.path


def test_slices_across_shards(tiny_tokenizer_file, corpus_file, tmp_path, monkeypatch):
    whole = build_or_load([corpus_file], tiny_tokenizer_file, cache_dir=tmp_path / "one-shard")
    assert len(whole.shards) == 1
    monkeypatch.setattr(cache_mod, "SHARD_TOKENS", 50)
    monkeypatch.setattr(cache_mod, "ENCODE_BATCH", 2)
    sharded = build_or_load([corpus_file], tiny_tokenizer_file, cache_dir=tmp_path / "many-shards")
    assert len(sharded.shards) > 3
    assert sharded.n_tokens == whole.n_tokens
    reference = _stream(whole)
    assert np.array_equal(_stream(sharded), reference)
    # every slice that starts or ends at / around a shard boundary
    for boundary in sharded.offsets[1:-1]:
        for start in (int(boundary) - 3, int(boundary) - 1, int(boundary)):
            for length in (1, 5, 120):
                if start >= 0 and start + length <= sharded.n_tokens:
                    assert np.array_equal(sharded.slice(start, length), reference[start:start + length]), (start, length)


def test_multiple_files_are_concatenated(tmp_path, tiny_tokenizer_file, tiny_tokenizer):
    a, b = tmp_path / "a.txt", tmp_path / "b.jsonl"
    a.write_text("the cat.\n")
    b.write_text(json.dumps({"text": "a dog."}) + "\n")
    c = build_or_load([a, b], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    expected = [t for ids in encode_plain(tiny_tokenizer, ["the cat.", "a dog."]) for t in ids + [SEP]]
    assert _stream(c).tolist() == expected


def test_file_without_text_is_an_error_and_leaves_no_entry(tmp_path, tiny_tokenizer_file):
    p = tmp_path / "blank.txt"
    p.write_text("\n\n   \n\n")
    with pytest.raises(UserError, match="no text found"):
        build_or_load([p], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_no_files(tiny_tokenizer_file, tmp_path):
    with pytest.raises(UserError, match="no input files"):
        build_or_load([], tiny_tokenizer_file, cache_dir=tmp_path / "cache")


def test_missing_input_is_checked_first(tiny_tokenizer_file, tmp_path):
    with pytest.raises(UserError, match="file not found"):
        build_or_load([tmp_path / "missing.txt"], tiny_tokenizer_file, cache_dir=tmp_path / "cache")
