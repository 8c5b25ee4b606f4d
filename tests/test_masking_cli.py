"""Pre-training with every masking strategy through the CLI on a tiny corpus, and their user errors."""

from __future__ import annotations

import json

import pytest

from budgetlm.cli import main

TINY = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32", "preset=none",
        "train.budget=3steps", "train.batch_size=4", "train.log_every=1", "train.threads=1",
        "train.checkpoint_every=1000steps"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, corpus_text, tiny_tokenizer_file):
    d = tmp_path_factory.mktemp("masking-cli")
    (d / "train.txt").write_text(corpus_text)
    (d / "valid.txt").write_text("\n\n".join(corpus_text.split("\n\n")[:8]) + "\n")
    assert main(["pmi-vocab", "--out", str(d / "pmi.txt"), "--min-count", "3", str(d / "train.txt")]) == 0
    return d


def pretrain(files, out, *extra):
    return main(["pretrain", "--tokenizer", str(files / "tok.json"),
                 "--train", str(files / "train.txt"), "--valid", str(files / "valid.txt"), "--out", str(out),
                 *TINY, *extra])


@pytest.fixture(scope="module", autouse=True)
def _tokenizer(files, tiny_tokenizer_file):
    (files / "tok.json").write_bytes(tiny_tokenizer_file.read_bytes())


@pytest.mark.parametrize("masking", ["wwm", "pmi", "spanbert"])
def test_pretrain_with_each_masking(files, tmp_path, masking, capsys):
    extra = [f"objective.masking={masking}", "objective.mask_rate=0.3"]
    if masking == "pmi":
        extra.append(f"objective.pmi_vocab={files / 'pmi.txt'}")
    assert pretrain(files, tmp_path / "run", *extra) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 3 and results["mlm_loss"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["objective"]["masking"] == masking


@pytest.mark.parametrize("task, masking", [("nsp", "random"), ("sop", "wwm")])
def test_pretrain_with_a_sentence_task(files, tmp_path, task, masking, capsys):
    assert pretrain(files, tmp_path / "run", f"objective.sentence_task={task}", f"objective.masking={masking}") == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(f"{task}_accuracy" in row for row in log)
    # the saved model is a plain MLM encoder: fine-tuning and fill-mask load it like any other
    from budgetlm.models.io import load_model

    model, meta = load_model(tmp_path / "run" / "model")
    assert set(model.heads) == {"mlm"}


def test_nsp_needs_two_rows(files, tmp_path, capsys):
    assert pretrain(files, tmp_path / "run", "objective.sentence_task=nsp", "train.batch_size=1") == 2
    assert "batch_size" in _error(capsys)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err


def test_pmi_without_vocabulary(files, tmp_path, capsys):
    assert pretrain(files, tmp_path / "run", "objective.masking=pmi") == 2
    assert "objective.pmi_vocab" in _error(capsys)


def test_pmi_vocabulary_missing(files, tmp_path, capsys):
    assert pretrain(files, tmp_path / "run", "objective.masking=pmi", f"objective.pmi_vocab={tmp_path / 'no.txt'}") == 2
    assert "no.txt" in _error(capsys)


def test_pmi_vocabulary_malformed(files, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("# header\nthe cat\t3\t1.0\nthe dog 3 1.0\n")
    assert pretrain(files, tmp_path / "run", "objective.masking=pmi", f"objective.pmi_vocab={bad}") == 2
    assert f"{bad}:3:" in _error(capsys)


def test_unknown_masking_lists_the_valid_ones(files, tmp_path, capsys):
    assert pretrain(files, tmp_path / "run", "objective.masking=t5") == 2
    err = _error(capsys)
    assert all(name in err for name in ("random", "wwm", "pmi", "spanbert"))
