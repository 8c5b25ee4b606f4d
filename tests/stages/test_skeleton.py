"""What the stage skeleton adds to every run: the learnt-nothing verdict (results.json `learned` and a plain
warning), passes over the data (`epochs`), and what train.eval_per_epoch / train.keep_best=main become."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from budgetlm.errors import UserError
from budgetlm.stages.skeleton import _resolve_evaluation
from budgetlm.train.config import TrainConfig
from tests.test_cli import TINY_TRAIN, run_cli


def finetune(d, out, capsys, *extra):
    code, _, err = run_cli(capsys, "finetune", "--model", d / "pre", "--train", d / "train.tsv", "--valid", d / "dev.tsv",
                           "--out", out, *TINY_TRAIN, "train.batch_size=8", *extra)
    assert code == 0, err
    return json.loads((out / "results.json").read_text()), err


def test_a_run_whose_loss_stays_flat_says_so(tiny_encoder, tmp_path, capsys):
    results, err = finetune(tiny_encoder, tmp_path / "flat", capsys, "--budget", "20steps", "train.lr=1e-9")
    assert results["learned"] is False
    warning = [l for l in err.splitlines() if l.startswith("warning: the training loss never left its starting level")]
    assert len(warning) == 1 and "--search lr" in warning[0] and "train.lr=1e-09" in warning[0]


def test_a_run_whose_loss_falls_learnt(tiny_encoder, tmp_path, capsys):
    results, err = finetune(tiny_encoder, tmp_path / "falls", capsys, "--budget", "20steps", "train.lr=3e-3")
    assert results["learned"] is True and "never left its starting level" not in err


def test_a_short_run_gets_no_verdict(tiny_encoder, tmp_path, capsys):
    results, err = finetune(tiny_encoder, tmp_path / "short", capsys, "--budget", "5steps", "train.lr=1e-9")
    assert "learned" not in results and "never left" not in err


def recipe(examples: int, metric: str):
    return SimpleNamespace(epoch_examples=examples, main_metric=metric)


def test_eval_per_epoch_becomes_the_steps_of_one_pass():
    cfg = TrainConfig(batch_size=8, grad_accum=2, eval_per_epoch=True)
    _resolve_evaluation(recipe(100, ""), cfg)
    assert cfg.eval_every == 7  # ceil(100 / 16)
    explicit = TrainConfig(eval_every=3, eval_per_epoch=True)
    _resolve_evaluation(recipe(100, ""), explicit)
    assert explicit.eval_every == 3  # an explicit interval wins
    unknown = TrainConfig(eval_per_epoch=True)
    _resolve_evaluation(recipe(0, ""), unknown)
    assert unknown.eval_every == 0


def test_keep_best_main_is_the_stages_main_figure():
    cfg = TrainConfig(keep_best="main", eval_every=5)
    _resolve_evaluation(recipe(10, "f1"), cfg)
    assert cfg.keep_best == "f1"
    with pytest.raises(UserError, match="no single main figure"):
        _resolve_evaluation(recipe(10, ""), TrainConfig(keep_best="main", eval_every=5))
