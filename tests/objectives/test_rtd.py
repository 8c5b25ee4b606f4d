"""ELECTRA replaced-token detection: the replacement draw, the discriminator loss, the shared embedding, and a
pre-training run through the CLI whose encoder fine-tunes and resumes exactly."""

from __future__ import annotations

import json
import math

import pytest
import torch

from budgetlm.cli import main
from budgetlm.models.config import ModelConfig
from budgetlm.objectives.mlm import IGNORE_INDEX
from budgetlm.models import build_rtd_model
from budgetlm.objectives.rtd import discriminator_loss, replace_tokens, rtd_loss


def test_replacements_are_labelled_by_whether_they_differ():
    ids = torch.tensor([[2, 10, 11, 12, 13, 3]])
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[0, [1, 3, 4]] = ids[0, [1, 3, 4]]  # three masked positions
    logits = torch.full((3, 20), -1e4)
    logits[0, 10] = logits[1, 7] = logits[2, 9] = 0.0  # the generator is sure: keep 10, write 7, write 9
    candidates = torch.tensor([[False, True, True, True, True, False]])  # [CLS] and [SEP] are never scored
    inputs, rtd = replace_tokens(ids, labels, logits, torch.Generator().manual_seed(0), candidates)
    assert inputs.tolist() == [[2, 10, 11, 7, 9, 3]]
    assert rtd.tolist() == [[IGNORE_INDEX, 0.0, 0.0, 1.0, 1.0, IGNORE_INDEX]]  # a sample equal to the original is original


def test_replacements_follow_the_generator_distribution():
    ids = torch.zeros(1, 4000, dtype=torch.long)
    labels = torch.zeros_like(ids)  # every position masked, original id 0
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2])).expand(4000, 3)
    inputs, _ = replace_tokens(ids, labels, logits, torch.Generator().manual_seed(1), torch.ones_like(ids, dtype=torch.bool))
    freq = torch.bincount(inputs[0], minlength=3).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.3, 0.2]), atol=0.03)


def test_discriminator_loss_is_binary_cross_entropy_on_scored_positions():
    logits = torch.tensor([[2.0, -1.0, 0.5, 9.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0, IGNORE_INDEX]])
    loss, n, correct = discriminator_loss(logits, labels)
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    expected = -(math.log(sig(2.0)) + math.log(1 - sig(-1.0)) + math.log(1 - sig(0.5))) / 3
    assert n == 3 and correct == 2 and float(loss) == pytest.approx(expected, rel=1e-6)


def _pair():
    cfg = ModelConfig(vocab_size=40, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_seq_len=12)
    torch.manual_seed(0)
    return build_rtd_model(cfg, generator_layers=1)


def test_the_generator_shares_the_token_embedding_and_the_state_dict_holds_it_once():
    model = _pair()
    assert model.generator.encoder.tok_emb is model.encoder.tok_emb
    keys = list(model.state_dict())
    assert sum(k.endswith("tok_emb.weight") for k in keys) == 1
    assert len({id(p) for p in model.parameters()}) == len(list(model.parameters()))
    ids = torch.randint(5, 40, (3, 12))
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, 2:5] = ids[:, 2:5]
    inputs = ids.clone()
    inputs[:, 2:5] = 4
    step = rtd_loss(model, model.generator, inputs, labels, ids, torch.ones_like(ids, dtype=torch.bool),
                    torch.Generator().manual_seed(0), 50.0)
    step.loss.backward()
    assert step.masked == 9 and step.scored == 36 and 0 <= step.replaced <= 9
    assert model.encoder.tok_emb.weight.grad is not None and model.generator.encoder.blocks[0].attn.qkv.weight.grad is not None


TINY = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32",
        "train.batch_size=4", "train.log_every=1", "train.threads=1", "objective.name=rtd"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, corpus_text, tiny_tokenizer_file):
    d = tmp_path_factory.mktemp("rtd-cli")
    (d / "train.txt").write_text(corpus_text)
    (d / "valid.txt").write_text("\n\n".join(corpus_text.split("\n\n")[:8]) + "\n")
    (d / "tok.json").write_bytes(tiny_tokenizer_file.read_bytes())
    rows = ["sentence\tlabel"] + [f"{line}\t{i % 2}" for i, line in enumerate(corpus_text.split("\n\n")[:40])]
    (d / "cls.tsv").write_text("\n".join(r.replace("\n", " ") for r in rows) + "\n")
    return d


def pretrain(files, out, *extra):
    return main(["pretrain", "--tokenizer", str(files / "tok.json"), "--train", str(files / "train.txt"),
                 "--valid", str(files / "valid.txt"), "--out", str(out), *TINY, *extra])


def test_pretrain_saves_the_discriminator_encoder_that_fine_tunes(files, tmp_path, capsys):
    assert pretrain(files, tmp_path / "run", "train.budget=4steps") == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 4 and 0 < results["rtd_accuracy"] <= 1 and 0 < results["replaced_fraction"] < 1
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all({"rtd_accuracy", "generator_accuracy"} <= row.keys() for row in log if "loss" in row)
    from budgetlm.models.io import load_model

    model, meta = load_model(tmp_path / "run" / "model")
    assert meta["kind"] == "encoder" and not model.heads and not hasattr(model, "generator")
    assert main(["finetune", "--model", str(tmp_path / "run"), "--train", str(files / "cls.tsv"), "--valid",
                 str(files / "cls.tsv"), "--budget", "2steps", "--out", str(tmp_path / "ft"), "train.threads=1",
                 "train.batch_size=4"]) == 0


def test_resume_equals_uninterrupted(files, tmp_path, capsys):
    """The generator is part of every checkpoint: resuming from step 3 of 6 gives the uninterrupted weights."""
    import shutil

    from safetensors.torch import load_file

    six = ["train.budget=6steps", "train.checkpoint_every=3steps"]
    assert pretrain(files, tmp_path / "full", *six) == 0
    cut = tmp_path / "cut"  # the full run as it stood after its step-3 checkpoint
    shutil.copytree(tmp_path / "full", cut)
    shutil.rmtree(cut / "model")
    (cut / "results.json").unlink()
    for c in sorted((cut / "checkpoints").iterdir())[1:]:
        shutil.rmtree(c)
    assert [c.name for c in (cut / "checkpoints").iterdir()] == ["step_00000003"]
    assert main(["pretrain", "--tokenizer", str(files / "tok.json"), "--train", str(files / "train.txt"), "--valid",
                 str(files / "valid.txt"), "--out", str(cut), "--resume", *TINY, *six]) == 0
    assert "resumed from step 3" in capsys.readouterr().err
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(cut / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("bad, word", [("objective.generator_layers=0", "generator_layers"),
                                       ("objective.generator_d_ff=-1", "generator_d_ff"),
                                       ("objective.rtd_weight=nan", "rtd_weight"),
                                       ("objective.sentence_task=nsp", "sentence_task")])
def test_bad_settings_are_one_line_errors(files, tmp_path, capsys, bad, word):
    assert pretrain(files, tmp_path / "run", "train.budget=2steps", bad) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and word in err, err
    assert not (tmp_path / "run" / "results.json").exists()
