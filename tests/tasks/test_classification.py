"""Sentence classification: labelled files, label sets, unseen labels, metrics."""

from __future__ import annotations

import json

import pytest
import torch

from budgetlm.config import TaskDataConfig
from budgetlm.errors import UserError
from budgetlm.tasks.classification import (
    classification_metrics, label_ids, label_names, read_examples, resolve_task_files,
)


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


def test_task_files_need_a_task_or_both_files():
    with pytest.raises(UserError, match="give --task NAME, or both --train FILE and --valid FILE"):
        resolve_task_files(TaskDataConfig(train="a.tsv"))
    with pytest.raises(UserError, match="unknown --task 'mnli'; built-in tasks: sst2, agnews"):
        resolve_task_files(TaskDataConfig(task="mnli"))


def test_builtin_task_missing_from_the_data_root():
    # conftest points BUDGETLM_DATA at an empty directory
    with pytest.raises(UserError, match="missing from the data root"):
        resolve_task_files(TaskDataConfig(task="sst2"))


def test_metrics():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    m = classification_metrics(logits, [0, 1, 1, 1])
    assert m["accuracy"] == 0.75
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
