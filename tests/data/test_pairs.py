"""Pair readers: STS Benchmark (no quoting, extra columns), MRPC (BOM + CRLF), pair tables, raw sentences."""

from __future__ import annotations

import json

import pytest

from budgetlm.data.pairs import read_mrpc, read_pair_file, read_scored_pairs, read_sts
from budgetlm.errors import UserError

STS_LINES = [
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.",
    'main-news\theadlines\t2013\t0002\t1.500\tHe said "no" loudly.\tA "quoted\tvalue is here\tsrc1\tsrc2',
    "main-forum\tdeft\t2014\t0003\t3.800\tA man plays a flute.\tA man is playing a flute.\textra-a\textra-b",
]


def test_sts_reader_splits_on_tabs_only_and_ignores_extra_columns(tmp_path):
    p = tmp_path / "sts-train.csv"
    p.write_text("\n".join(STS_LINES) + "\n", encoding="utf-8")
    rows = read_sts(p)
    assert rows[0] == ("A plane is taking off.", "An air plane is taking off.", 5.0)
    assert rows[1] == ('He said "no" loudly.', 'A "quoted', 1.5)  # quotes are literal; fields 5, 6 only
    assert rows[2] == ("A man plays a flute.", "A man is playing a flute.", 3.8)


def test_sts_pairs_above_min_score_are_positives(tmp_path):
    p = tmp_path / "sts.csv"
    p.write_text("\n".join(STS_LINES) + "\n", encoding="utf-8")
    data = read_pair_file(p, min_score=3.5)
    assert len(data.scored) == 3
    assert data.positives == [("A plane is taking off.", "An air plane is taking off."),
                              ("A man plays a flute.", "A man is playing a flute.")]


@pytest.mark.parametrize("line, message", [
    ("g\tf\t2012\t1\tfive\tA b.\tC d.", "score 'five' is not a number"),
    ("g\tf\t2012\t1\t7.5\tA b.\tC d.", "not a number in [0, 5]"),
    ("g\tf\t2012\t1\t2.0\tA b.", "expected at least 7 tab-separated fields"),
    ("g\tf\t2012\t1\t2.0\t \tC d.", "empty sentence"),
])
def test_sts_reader_bad_lines_name_file_and_line(tmp_path, line, message):
    p = tmp_path / "sts.csv"
    p.write_text(STS_LINES[0] + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"sts\.csv:2: ") as e:
        read_sts(p)
    assert message in str(e.value)


def test_mrpc_original_release_bom_crlf(tmp_path):
    p = tmp_path / "msr_paraphrase_train.txt"
    rows = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", "1\t1\t2\tHe left early.\tHe went away early.",
            "0\t3\t4\tIt rained.\tThe sun shone."]
    p.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    assert read_mrpc(p) == [(1, "He left early.", "He went away early."), (0, "It rained.", "The sun shone.")]
    data = read_pair_file(p)
    assert data.positives == [("He left early.", "He went away early.")] and not data.scored


def test_mrpc_missing_column_names_the_line(tmp_path):
    p = tmp_path / "mrpc.txt"
    p.write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tOnly one sentence\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"mrpc\.txt:2: expected 5 tab-separated fields, found 4"):
        read_pair_file(p)


def test_two_column_files_are_positive_pairs(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("left\tright\na cat\ta small cat\na dog\ta big dog\n", encoding="utf-8")
    assert read_pair_file(tsv).positives == [("a cat", "a small cat"), ("a dog", "a big dog")]
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"anchor": a, "positive": b, "id": i})
                               for i, (a, b) in enumerate([("x y", "x z"), ("p q", "p r")])) + "\n")
    assert read_pair_file(jsonl).positives == [("x y", "x z"), ("p q", "p r")]


def test_scored_table_and_evaluation_file(tmp_path):
    p = tmp_path / "dev.tsv"
    p.write_text("sentence1\tsentence2\tscore\na\tb\t4.5\nc\td\t0.5\n", encoding="utf-8")
    assert read_scored_pairs(p) == [("a", "b", 4.5), ("c", "d", 0.5)]
    pairs_only = tmp_path / "pairs.tsv"
    pairs_only.write_text("sentence1\tsentence2\na\tb\n", encoding="utf-8")
    with pytest.raises(UserError, match="needs similarity scores"):
        read_scored_pairs(pairs_only)


def test_pair_file_with_empty_second_sentence(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("sentence1\tsentence2\na\tb\nc\t\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"pairs\.tsv:3: empty sentence in a pair"):
        read_pair_file(p)


def test_one_column_files_are_raw_sentences(tmp_path):
    txt = tmp_path / "raw.txt"
    txt.write_text("first sentence\n\n second one \n", encoding="utf-8")
    assert read_pair_file(txt).sentences == ["first sentence", "second one"]
    tsv = tmp_path / "raw.tsv"
    tsv.write_text("text\nalpha\nbeta\n", encoding="utf-8")
    assert read_pair_file(tsv).sentences == ["alpha", "beta"]


def test_ambiguous_columns_are_an_error(tmp_path):
    p = tmp_path / "three.tsv"
    p.write_text("a\tb\tc\n1\t2\t3\n", encoding="utf-8")
    with pytest.raises(UserError, match="cannot tell which two columns"):
        read_pair_file(p)
