"""Tokenizers: every kind puts the BERT special tokens at fixed ids; loading checks them; errors are UserErrors."""

from __future__ import annotations

import pytest

from budgetlm.errors import UserError
from budgetlm.tokenizer import (
    CLS, MASK, PAD, SEP, SPECIAL_TOKENS, UNK, TokenizerOptions, encode_plain, load_tokenizer, tokenizer_path,
    train_tokenizer,
)


def test_special_token_ids_are_fixed():
    assert SPECIAL_TOKENS == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (PAD, UNK, CLS, SEP, MASK) == (0, 1, 2, 3, 4)


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "unigram", "char"])
def test_every_kind_trains_with_specials_at_fixed_ids(kind, corpus_text, tmp_path):
    vocab_size = 300 if kind == "bpe" else 100  # byte-level BPE starts from a 256-symbol alphabet
    tok = train_tokenizer(kind, vocab_size, corpus_text.split("\n\n"))
    assert tok.get_vocab_size() <= vocab_size
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i
    enc = tok.encode("The cat sees a dog.")
    assert enc.ids[0] == CLS and enc.ids[-1] == SEP
    assert UNK not in enc.ids[1:-1]  # every word is in the training text
    # a saved tokenizer loads back and encodes identically
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    assert load_tokenizer(tmp_path).encode("The cat sees a dog.").ids == enc.ids


def test_pairs_get_segment_ids(tiny_tokenizer):
    enc = tiny_tokenizer.encode("the cat", "a dog")
    assert enc.ids.count(SEP) == 2 and enc.ids[0] == CLS
    first_sep = enc.ids.index(SEP)
    assert set(enc.type_ids[: first_sep + 1]) == {0}
    assert set(enc.type_ids[first_sep + 1:]) == {1}


def test_lowercase_by_default_and_optional(corpus_text):
    lower = train_tokenizer("wordpiece", 100, corpus_text.split("\n\n"))
    assert lower.encode("THE CAT").ids == lower.encode("the cat").ids
    cased = train_tokenizer("wordpiece", 100, corpus_text.split("\n\n"), TokenizerOptions(lowercase=False))
    assert cased.encode("THE CAT").ids != cased.encode("the cat").ids


def test_encode_plain_has_no_specials(tiny_tokenizer):
    texts = ["the cat sees a dog.", "a big tree!"]
    plain = encode_plain(tiny_tokenizer, texts)
    full = [tiny_tokenizer.encode(t).ids for t in texts]
    for p, f in zip(plain, full):
        assert f == [CLS] + p + [SEP]


def test_vocab_too_small_for_special_tokens():
    with pytest.raises(UserError, match="too small"):
        train_tokenizer("wordpiece", 8, ["the cat"])


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(UserError) as e:
        train_tokenizer("sentencepiece", 100, ["the cat"])
    assert "wordpiece, bpe, unigram" in str(e.value)


def test_tokenizer_path_accepts_dir_or_file(tiny_tokenizer_file):
    assert tokenizer_path(tiny_tokenizer_file) == tiny_tokenizer_file
    assert tokenizer_path(tiny_tokenizer_file.parent) == tiny_tokenizer_file


def test_missing_tokenizer(tmp_path):
    with pytest.raises(UserError, match="no tokenizer.json here"):
        load_tokenizer(tmp_path)


def test_corrupt_tokenizer_file(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(UserError, match="not a valid tokenizer file"):
        load_tokenizer(tmp_path)


def test_tokenizer_without_bert_specials_is_refused(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["the cat sat"], trainers.WordLevelTrainer(special_tokens=["<unk>"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(UserError) as e:
        load_tokenizer(tmp_path)
    assert "[PAD] at id 0" in str(e.value)


def test_char_tokenizer_round_trips_text_exactly(corpus_text):
    from budgetlm.tokenizer import TokenizerOptions, encode_plain

    text = "First Citizen:\nBefore we proceed, hear me speak.\n\n  All:\tSpeak, speak!"
    tok = train_tokenizer("char", 200, [text, corpus_text], TokenizerOptions(lowercase=False, nfkc=False))
    ids = encode_plain(tok, [text])[0]
    assert len(ids) == len(text)  # one token per character, newlines, tabs and repeated spaces included
    assert tok.decode(ids) == text
    assert tok.decode(encode_plain(tok, ["q€"])[0]) == "q"  # unseen '€' is [UNK], dropped on decoding
    # the vocabulary is capped to the most frequent characters
    small = train_tokenizer("char", len(SPECIAL_TOKENS) + 10, [text])
    assert small.get_vocab_size() == len(SPECIAL_TOKENS) + 10


def _swap_ids(data: dict, a: int, b: int) -> dict:
    """A tokenizer.json with the tokens at ids a and b exchanged (as BERT's vocab puts [CLS] at 101)."""
    import copy

    data = copy.deepcopy(data)
    swap = {a: b, b: a}
    data["model"]["vocab"] = {t: swap.get(i, i) for t, i in data["model"]["vocab"].items()}
    for t in data["added_tokens"]:
        t["id"] = swap.get(t["id"], t["id"])
    for v in data["post_processor"]["special_tokens"].values():
        v["ids"] = [swap.get(i, i) for i in v["ids"]]
    return data


def test_conform_tokenizer_json_moves_special_tokens_home(tiny_tokenizer_file):
    import json

    from tokenizers import Tokenizer

    from budgetlm.tokenizer import CLS, conform_tokenizer_json

    original = json.loads(tiny_tokenizer_file.read_text())
    moved = _swap_ids(original, CLS, 40)  # [CLS] at 40; the token that had 40 at 2
    moved["padding"] = {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": None, "pad_id": 0,
                        "pad_type_id": 0, "pad_token": "[PAD]"}
    fixed, inv = conform_tokenizer_json(moved)
    assert inv[CLS] == 40 and inv[40] == CLS and inv[7] == 7
    tok = Tokenizer.from_str(json.dumps(fixed))
    text = "the quiet king sees a tree"
    assert tok.encode(text).ids == Tokenizer.from_file(str(tiny_tokenizer_file)).encode(text).ids  # no padding either
    moved_ids = Tokenizer.from_str(json.dumps(_swap_ids(original, CLS, 40))).encode(text).ids
    assert [inv.index(i) for i in moved_ids] == tok.encode(text).ids  # the same tokens, renumbered
    assert conform_tokenizer_json(original)[1] is None


def test_cyrillic_keeps_short_i_and_yo_when_lowercased():
    # what `pretrain` trains (data.lowercase: NFKC + lowercase, no accent stripping): й and ё are letters of their own
    # in Russian; stripping accents would turn them into и and е (йод "iodine" -> иод, ёлка -> елка)
    import unicodedata

    texts = ["Йод и йогурт, ёлка и ЁЖ.", "Скоро ты вернешься домой, любимый ❤"] * 20
    tok = train_tokenizer("wordpiece", 120, texts, TokenizerOptions(lowercase=True, nfkc=True))
    decomposed = unicodedata.normalize("NFD", "Йод ёлка")  # и + combining breve, е + combining diaeresis
    assert tok.normalizer.normalize_str(decomposed) == "йод ёлка"
    assert tok.normalizer.normalize_str("ЙОГУРТ ❤") == "йогурт ❤"
    assert "[UNK]" not in tok.encode("йод и ёлка ❤").tokens
    stripped = train_tokenizer("wordpiece", 120, texts, TokenizerOptions(strip_accents=True))
    assert stripped.normalizer.normalize_str("Йод ёлка") == "иод елка"
