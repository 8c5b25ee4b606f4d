"""Sentence and pair classification: labelled files (MRPC's BOM + CRLF release), label sets, unseen labels,
pair encoding with segment ids, metrics."""

from __future__ import annotations

import json

import pytest
import torch

from budgetlm.errors import UserError
from budgetlm.tasks.base import Columns
from budgetlm.tasks.classification import (
    Examples, classification_metrics, encode_ids_and_type_ids, label_ids, label_names, read_examples,
)
from budgetlm.tasks.registry import TASK_TYPES
from budgetlm.tokenizer import CLS, SEP

# the first rows of the original MRPC release: UTF-8 BOM, CRLF, this header
MRPC = ("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
        "1\t702876\t702977\tAmrozi accused his brother , whom he called \" the witness \" , of deliberately distorting his evidence .\t"
        "Referring to him as only \" the witness \" , Amrozi accused his brother of deliberately distorting his evidence .\r\n"
        "0\t2108705\t2108831\tYucaipa owned Dominick 's before selling the chain to Safeway in 1998 for $ 2.5 billion .\t"
        "Yucaipa bought Dominick 's in 1995 for $ 693 million and sold it to Safeway for $ 1.8 billion in 1998 .\r\n")
MRPC_COLUMNS = Columns("#1 String", "#2 String", "Quality")


def test_read_tsv_examples_keeps_line_numbers(tmp_path, capsys):
    p = tmp_path / "train.tsv"
    p.write_text("sentence\tlabel\ngood film\tpos\n\t neg\nbad film\tneg\n")
    ex = read_examples(p, "", "label")
    assert ex.texts == ["good film", "bad film"]
    assert ex.labels == ["pos", "neg"]
    assert ex.lines == [2, 4]
    assert "skipped 1 example(s) with empty text" in capsys.readouterr().err


def test_read_jsonl_examples(tmp_path):
    p = tmp_path / "train.jsonl"
    p.write_text("\n".join(json.dumps(o) for o in [{"text": "a", "label": 1}, {"text": "b", "label": 0}]) + "\n")
    ex = read_examples(p, "", "label")
    assert (ex.texts, ex.labels, ex.lines) == (["a", "b"], ["1", "0"], [1, 2])


def test_jsonl_without_label_names_the_line(tmp_path):
    p = tmp_path / "train.jsonl"
    p.write_text(json.dumps({"text": "a", "label": 1}) + "\n" + json.dumps({"text": "b"}) + "\n")
    with pytest.raises(UserError, match=r"train\.jsonl:2: needs fields 'text' and 'label'"):
        read_examples(p, "", "label")


def test_empty_label_names_the_line(tmp_path):
    p = tmp_path / "train.tsv"
    p.write_text("sentence\tlabel\ngood\t1\nbad\t \n")
    with pytest.raises(UserError, match=r"train\.tsv:3: empty label"):
        read_examples(p, "", "label")


def test_file_with_only_a_header(tmp_path):
    p = tmp_path / "train.tsv"
    p.write_text("sentence\tlabel\n")
    with pytest.raises(UserError, match="no examples found"):
        read_examples(p, "", "label")


def test_integer_labels_sort_numerically(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("sentence\tlabel\n" + "".join(f"s{i}\t{l}\n" for i, l in enumerate(["10", "2", "-1", "2"])))
    assert label_names(read_examples(p, "", "label")) == ["-1", "2", "10"]


def test_unseen_label_names_file_and_line(tmp_path):
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text("sentence\tlabel\na\tx\nb\ty\n")
    dev.write_text("sentence\tlabel\nc\tx\nd\tz\n")
    names = label_names(read_examples(train, "", "label"))
    assert label_ids(read_examples(train, "", "label"), names) == [0, 1]
    with pytest.raises(UserError) as e:
        label_ids(read_examples(dev, "", "label"), names)
    assert str(e.value).startswith(f"{dev}:3: label 'z' does not occur in the training data")


def test_single_label_warns(tmp_path, capsys):
    p = tmp_path / "t.tsv"
    p.write_text("sentence\tlabel\na\t1\nb\t1\n")
    assert label_names(read_examples(p, "", "label")) == ["1"]
    assert "every example has the label '1'" in capsys.readouterr().err


def test_mrpc_release_bom_crlf(tmp_path):
    p = tmp_path / "msr_paraphrase_train.txt"
    p.write_bytes(MRPC.encode("utf-8"))
    ex = TASK_TYPES["pair"].read(str(p), MRPC_COLUMNS)
    assert ex.labels == ["1", "0"] and ex.lines == [2, 3]
    assert ex.texts[0].startswith("Amrozi accused") and ex.texts_b[1].endswith("in 1998 .")
    assert not any("\r" in t or "\ufeff" in t for t in ex.texts + ex.texts_b)


def test_pair_file_missing_second_column(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("sentence1\tlabel\na\t1\n")
    with pytest.raises(UserError, match=r"pairs\.tsv: no column 'sentence2' for the second text"):
        read_examples(p, "sentence1", "label", text_b_column="sentence2")


def test_pair_with_an_empty_second_text_is_skipped(tmp_path, capsys):
    p = tmp_path / "pairs.tsv"
    p.write_text("sentence1\tsentence2\tlabel\na\tb\t1\nc\t \t0\n")
    ex = read_examples(p, "sentence1", "label", text_b_column="sentence2")
    assert ex.texts_b == ["b"]
    assert "skipped 1 example(s) with empty text" in capsys.readouterr().err


def test_pair_encoding_segment_ids(tiny_tokenizer):
    ex = Examples(["the cat sees", "a dog"], ["0", "1"], [2, 3], "x", texts_b=["a red bird", "the king likes the queen"])
    ids, types = encode_ids_and_type_ids(tiny_tokenizer, ex, 64)
    for seq, seg, a, b in zip(ids, types, ex.texts, ex.texts_b):
        na = len(tiny_tokenizer.encode(a, add_special_tokens=False).ids)
        nb = len(tiny_tokenizer.encode(b, add_special_tokens=False).ids)
        assert seq[0] == CLS and seq[1 + na] == SEP and seq[-1] == SEP and len(seq) == na + nb + 3
        assert seg == [0] * (na + 2) + [1] * (nb + 1)  # [CLS] A [SEP] -> 0, B [SEP] -> 1


def test_pair_truncation_keeps_both_segments(tiny_tokenizer):
    long = " ".join(["the cat sees a dog"] * 20)
    ex = Examples([long], ["0"], [2], "x", texts_b=[long])
    (seq,), (seg,) = encode_ids_and_type_ids(tiny_tokenizer, ex, 16)
    assert len(seq) == 16 and seq.count(SEP) == 2 and 0 in seg and 1 in seg


def test_sentence_encoding_has_one_segment(tiny_tokenizer):
    (seq,), (seg,) = encode_ids_and_type_ids(tiny_tokenizer, Examples(["the cat"], ["0"], [2], "x"), 32)
    assert seq[0] == CLS and seq[-1] == SEP and set(seg) == {0}


def test_metrics():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    m = classification_metrics(logits, [0, 1, 1, 1])
    assert m["accuracy"] == 0.75
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert "f1" not in m  # labels unknown: no positive class
    assert classification_metrics(logits, [0, 1, 1, 1], ["0", "1"])["f1"] == pytest.approx(0.8)  # P=1, R=2/3


def test_five_class_metrics_by_hand():
    # RuSentiment's 5 classes: neutral 0, positive 1, negative 2, speech 3, skip 4
    gold = [0, 0, 0, 0, 1, 1, 2, 3, 4, 4]
    pred = [0, 0, 1, 0, 1, 2, 2, 3, 1, 4]
    logits = torch.nn.functional.one_hot(torch.tensor(pred), 5).float() * 3.0
    m = classification_metrics(logits, gold, ["neutral", "positive", "negative", "speech", "skip"])
    # per class (precision, recall) -> F1: neutral (3/3, 3/4) -> 6/7; positive (1/3, 1/2) -> 2/5; negative (1/2, 1/1)
    # -> 2/3; speech (1, 1) -> 1; skip (1/1, 1/2) -> 2/3; supports 4, 2, 1, 1, 2
    f1 = [6 / 7, 2 / 5, 2 / 3, 1.0, 2 / 3]
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["macro_f1"] == pytest.approx(sum(f1) / 5)  # 0.7181
    assert m["weighted_f1"] == pytest.approx((4 * f1[0] + 2 * f1[1] + f1[2] + f1[3] + 2 * f1[4]) / 10)  # 0.7229
    assert "f1" not in m  # not a binary 0/1 task
