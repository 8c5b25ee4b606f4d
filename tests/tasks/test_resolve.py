"""Task-type inference from the data, explicit overrides, built-in names, and the errors on bad inputs."""

from __future__ import annotations

import json

import pytest

from budgetlm.errors import UserError
from budgetlm.tasks.config import TaskDataConfig
from budgetlm.tasks.resolve import resolve_task


def spec_for(tmp_path, name, text, **kw):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return resolve_task(TaskDataConfig(train=str(p), valid=str(p), **kw))


@pytest.mark.parametrize("a,b", [("sentence1", "sentence2"), ("question", "sentence"), ("text_a", "text_b"),
                                 ("#1 String", "#2 String")])
def test_two_text_columns_mean_pairs(tmp_path, a, b):
    s = spec_for(tmp_path, "p.tsv", f"label\t{a}\t{b}\n1\tx\ty\n")
    assert (s.task_type, s.columns.text, s.columns.text_b, s.columns.label) == ("pair", a, b, "label")
    assert "pair classification" in s.inferred and "two text columns" in s.inferred


def test_one_text_column_means_sentences(tmp_path):
    s = spec_for(tmp_path, "s.tsv", "sentence\tlabel\ngood\t1\nbad\t0\n")
    assert (s.task_type, s.columns.text, s.columns.text_b) == ("sentence", "sentence", "")


def test_fractional_numbers_mean_regression(tmp_path):
    s = spec_for(tmp_path, "r.tsv", "sentence1\tsentence2\tscore\na\tb\t3.8\nc\td\t1\n")
    assert (s.task_type, s.columns.label, s.columns.text_b) == ("regression", "score", "sentence2")
    # integer labels stay classes
    assert spec_for(tmp_path, "c.tsv", "text\tlabel\na\t1\nb\t5\n").task_type == "sentence"


def test_conll_means_token_classification(tmp_path):
    s = spec_for(tmp_path, "train", "en:Paris\tB-LOC\nen:is\tO\n\nen:Bob\tB-PER\n")
    assert s.task_type == "token" and "token classification" in s.inferred


def test_jsonl_pairs(tmp_path):
    rows = [{"question": "q", "sentence": "s", "label": "entailment"}]
    s = spec_for(tmp_path, "t.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    assert (s.task_type, s.columns.text, s.columns.text_b) == ("pair", "question", "sentence")


def test_overrides_win(tmp_path):
    text = "sentence1\tsentence2\tlabel\na\tb\t1\n"
    s = spec_for(tmp_path, "p.tsv", text, task_type="sentence", text_column="sentence2")
    assert (s.task_type, s.columns.text, s.columns.text_b) == ("sentence", "sentence2", "")
    s = spec_for(tmp_path, "p2.tsv", "first\tsecond\tlabel\na\tb\t1\n", text_column="first", text_b_column="second")
    assert (s.task_type, s.columns.text, s.columns.text_b) == ("pair", "first", "second")
    assert spec_for(tmp_path, "p3.tsv", "first\tsecond\tlabel\na\tb\t1\n", text_column="first",
                    text_b_column="second", task_type="regression").task_type == "regression"


def test_missing_label_column(tmp_path):
    with pytest.raises(UserError, match=r"t\.tsv: no label column 'label'; columns are: sentence, target"):
        spec_for(tmp_path, "t.tsv", "sentence\ttarget\na\t1\n")


def test_pair_type_without_second_column(tmp_path):
    with pytest.raises(UserError, match="pair classification needs a second text column"):
        spec_for(tmp_path, "t.tsv", "sentence\tlabel\na\t1\n", task_type="pair")


def test_needs_a_task_or_files():
    with pytest.raises(UserError, match="give --task NAME, or both --train FILE and --valid FILE"):
        resolve_task(TaskDataConfig(train="a.tsv"))
    with pytest.raises(UserError, match="unknown --task 'mnli'; built-in tasks: sst2, agnews, mrpc, wikiann, wnut17"):
        resolve_task(TaskDataConfig(task="mnli"))


def test_builtin_task_missing_from_the_data_root():
    # conftest points BUDGETLM_DATA at an empty directory
    with pytest.raises(UserError, match="missing from the data root"):
        resolve_task(TaskDataConfig(task="mrpc"))


def test_builtins_resolve_in_a_data_root(tmp_path, monkeypatch):
    for parts in [("mrpc", "msr_paraphrase_train.txt"), ("mrpc", "msr_paraphrase_test.txt"),
                  ("ner-wikiann-en", "train"), ("ner-wikiann-en", "dev"), ("ner-wikiann-en", "test")]:
        (tmp_path / parts[0]).mkdir(exist_ok=True)
        (tmp_path / parts[0] / parts[1]).write_text("x\n")
    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path))
    mrpc = resolve_task(TaskDataConfig(task="mrpc"))
    assert (mrpc.task_type, mrpc.valid, mrpc.valid_every) == ("pair", "", 10)
    assert mrpc.test.endswith("msr_paraphrase_test.txt") and mrpc.columns.label == "Quality"
    wikiann = resolve_task(TaskDataConfig(task="wikiann", name="ner"))
    assert (wikiann.task_type, wikiann.name) == ("token", "ner") and wikiann.test.endswith("test")
