"""CoNLL readers: tab/space columns, -DOCSTART-, WikiANN's `en:` prefix, BOM + CRLF, IOB1 -> IOB2, ragged rows."""

from __future__ import annotations

import pytest

from budgetlm.errors import UserError
from budgetlm.tasks.conll import entities, looks_like_conll, read_conll, to_iob2

# excerpts shaped like the real files in the data root (WikiANN-en, WNUT-17, CoNLL-2003)
WIKIANN = "en:R.H.\tB-ORG\nen:Saunders\tI-ORG\nen:(\tO\n\nen:Paris\tB-LOC\nen:is\tO\n"
WNUT = "@paulwalk\tO\nIt\tO\n's\tO\nthe\tO\nEmpire\tB-location\nState\tI-location\n\nHi\tO\n"
CONLL2003 = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\ncall NN I-NP O\n\n" \
            "Peter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\n"


def write(tmp_path, name, text, **kw):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8") if not kw else text.encode(kw["encoding"]))
    return p


def test_wikiann_prefix_is_stripped(tmp_path):
    s = read_conll(write(tmp_path, "train", WIKIANN))
    assert s.words == [["R.H.", "Saunders", "("], ["Paris", "is"]]
    assert s.tags == [["B-ORG", "I-ORG", "O"], ["B-LOC", "O"]]
    assert s.lines == [1, 5]


def test_wnut_tab_file_keeps_tokens_verbatim(tmp_path):
    s = read_conll(write(tmp_path, "wnut17train.conll", WNUT))
    assert s.words[0][:3] == ["@paulwalk", "It", "'s"]
    assert s.tags[0][4:] == ["B-location", "I-location"]
    assert len(s.words) == 2


def test_conll2003_space_columns_docstart_and_iob1(tmp_path, capsys):
    s = read_conll(write(tmp_path, "train.txt", CONLL2003))
    assert s.words == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    # IOB1 (I- opens an entity after O) becomes IOB2
    assert s.tags == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"]]
    assert s.converted_iob1 == 3
    assert "3 tag(s) converted from IOB1 to IOB2" in capsys.readouterr().err


def test_bom_and_crlf(tmp_path):
    s = read_conll(write(tmp_path, "t.conll", "\ufeff" + WNUT.replace("\n", "\r\n")))
    assert s.words[0][0] == "@paulwalk" and s.tags[0][-1] == "I-location"


def test_ragged_row_names_file_and_line(tmp_path):
    p = write(tmp_path, "bad.conll", "a\tO\nb\tB-PER\n\nc\tx\tO\n")
    with pytest.raises(UserError, match=r"bad\.conll:4: expected 2 columns like the first row, found 3"):
        read_conll(p)


def test_row_without_tag_and_bad_tag(tmp_path):
    with pytest.raises(UserError, match=r"one\.conll:1: .*found one column"):
        read_conll(write(tmp_path, "one.conll", "word\nother\n"))
    with pytest.raises(UserError, match=r"tag\.conll:2: tag 'PER' is not IOB"):
        read_conll(write(tmp_path, "tag.conll", "a\tO\nb\tPER\n"))


def test_empty_and_sentence_less_files(tmp_path):
    with pytest.raises(UserError, match="file is empty"):
        read_conll(write(tmp_path, "empty.conll", ""))
    with pytest.raises(UserError, match="no sentences found"):
        read_conll(write(tmp_path, "blank.conll", "\n\n-DOCSTART- O\n\n"))


def test_to_iob2_leaves_iob2_alone():
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert to_iob2(iob2) == (iob2, 0)
    assert to_iob2(["I-PER", "I-PER", "I-LOC", "O", "I-ORG"]) == (["B-PER", "I-PER", "B-LOC", "O", "B-ORG"], 3)


def test_entities_from_tags():
    words = "Angela Merkel met Google in Paris Texas".split()
    tags = ["B-PER", "I-PER", "O", "B-ORG", "O", "B-LOC", "B-LOC"]
    assert entities(words, tags) == [("Angela Merkel", "PER"), ("Google", "ORG"), ("Paris", "LOC"), ("Texas", "LOC")]


def test_looks_like_conll(tmp_path):
    assert looks_like_conll(write(tmp_path, "train", WIKIANN))
    assert looks_like_conll(write(tmp_path, "x.conll", "anything\n"))
    assert not looks_like_conll(write(tmp_path, "t.tsv", "sentence\tlabel\ngood film\t1\n\nbad film\t0\n"))
    assert not looks_like_conll(write(tmp_path, "one_sentence", "a\tO\nb\tB-PER\n"))  # no sentence break seen
