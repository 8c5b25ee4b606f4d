"""`finetune --search lr` (stages/search.py): the trials are reported and the best one's value trains on."""

from __future__ import annotations

import json

import pytest

from budgetlm.errors import UserError
from budgetlm.stages.search import split_budget, table
from budgetlm.train.config import Budget
from tests.test_cli import TINY_TRAIN, assert_user_error, run_cli


def test_split_budget_keeps_the_unit_and_leaves_the_rest():
    assert split_budget(Budget.parse("100steps"), 0.1, 3) == (Budget.parse("10steps"), Budget.parse("70steps"))
    assert split_budget(Budget.parse("10m"), 0.1, 3) == (Budget.parse("60s"), Budget.parse("420s"))
    assert split_budget(Budget.parse("2Mtokens"), 0.25, 2)[1] == Budget.parse("1Mtokens")
    with pytest.raises(UserError, match="too small"):
        split_budget(Budget.parse("3steps"), 0.3, 3)


def test_the_table_marks_the_chosen_value():
    record = {"metric": "accuracy", "trial_budget": "10steps", "final_budget": "70steps", "best_lr": 3e-4,
              "trials": [{"lr": 1e-4, "accuracy": 0.5, "steps": 10, "learned": False},
                         {"lr": 3e-4, "accuracy": 0.75, "steps": 10, "learned": True}]}
    lines = table(record).splitlines()
    assert lines[2].startswith("    ") and "0.5000" in lines[2] and "false" in lines[2]
    assert lines[3].startswith("  * ") and "0.0003" in lines[3] and "0.7500" in lines[3]
    assert lines[-1] == "continuing with train.lr=0.0003 for 70steps"


def test_search_tries_each_lr_and_continues_with_the_best(tiny_encoder, tmp_path, capsys):
    d, out = tiny_encoder, tmp_path / "ft"
    code, _, err = run_cli(capsys, "finetune", "--model", d / "pre", "--train", d / "train.tsv", "--valid", d / "dev.tsv",
                           "--budget", "20steps", "--search", "lr", "--out", out, *TINY_TRAIN, "train.batch_size=8",
                           "train.lr=1e-3", "search.factors=[0.000001,1]", "search.fraction=0.2")
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    search = results["search"]
    assert search["metric"] == "accuracy" and search["trial_budget"] == "4steps" and search["final_budget"] == "12steps"
    assert [t["lr"] for t in search["trials"]] == pytest.approx([1e-9, 1e-3])
    assert all(t["steps"] == 4 for t in search["trials"])
    scores = [t["accuracy"] for t in search["trials"]]
    assert search["best_lr"] == search["trials"][scores.index(max(scores))]["lr"]
    for t in search["trials"]:  # each trial is a run of its own, scored on the validation file
        trial = json.loads((out / "search" / f"lr{t['lr']:.3g}" / "results.json").read_text())
        assert trial["accuracy"] == t["accuracy"] and "test_accuracy" not in trial
    # the chosen value trained afresh for the rest of the budget
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["lr"] == pytest.approx(search["best_lr"]) and results["steps"] == 12
    assert "search over train.lr (2 trials of 4steps each, scored by accuracy" in err
    assert f"continuing with train.lr={search['best_lr']:.3g} for 12steps" in err


def test_search_needs_validation_data(tiny_encoder, tmp_path, capsys):
    d = tiny_encoder
    assert_user_error(capsys, ["finetune", "--model", d / "pre", "--train", d / "train.tsv", "--search", "lr",
                               "--out", tmp_path / "ft", *TINY_TRAIN], "--search scores each learning rate on the validation data",
                      "--valid FILE", only_output=False)
    assert not (tmp_path / "ft").exists()


def test_search_refuses_to_overwrite_a_search(tiny_encoder, tmp_path, capsys):
    (tmp_path / "ft" / "search" / "lr0.001").mkdir(parents=True)
    d = tiny_encoder
    assert_user_error(capsys, ["finetune", "--model", d / "pre", "--train", d / "train.tsv", "--valid", d / "dev.tsv",
                               "--search", "lr", "--out", tmp_path / "ft", *TINY_TRAIN], "already holds a search",
                      only_output=False)


@pytest.mark.parametrize("override, message", [("search.factors=[1]", "at least two"),
                                               ("search.fraction=0.5", "a tenth of the budget"),
                                               ("method=prompt", "--method prompt")])
def test_bad_search_settings_are_user_errors(tiny_encoder, tmp_path, capsys, override, message):
    d = tiny_encoder
    assert_user_error(capsys, ["finetune", "--model", d / "pre", "--train", d / "train.tsv", "--valid", d / "dev.tsv",
                               "--search", "lr", "--out", tmp_path / "ft", override], message, only_output=False)


def fake_runs(scores: dict):
    """A train_once that records its calls and scores each run by its directory's name (the final run: 0.0)."""
    calls = []

    def train_once(cfg, run_dir, resume):
        calls.append((cfg.train.lr, str(cfg.train.budget), run_dir.name, resume, cfg.search.param))
        run_dir.mkdir(parents=True, exist_ok=True)
        return {"accuracy": scores.get(run_dir.name, 0.0), "steps": 1}

    return calls, train_once


def search_config(*overrides):
    from budgetlm.config import build_config
    from budgetlm.stages.config import FinetuneConfig

    return build_config(FinetuneConfig, None, ["data.train=t.tsv", "data.valid=v.tsv", "train.lr=1e-3",
                                               "train.budget=100steps", "search.param=lr", *overrides])


def test_search_runs_each_trial_then_the_best_for_the_rest(tmp_path):
    from budgetlm.stages.search import search_lr

    calls, train_once = fake_runs({"lr0.000333": 0.6, "lr0.001": 0.7, "lr0.003": 0.65})
    results = search_lr(search_config(), tmp_path / "run", False, "accuracy", train_once)
    assert [c[:3] for c in calls[:3]] == [(pytest.approx(3.333e-4), "10steps", "lr0.000333"), (1e-3, "10steps", "lr0.001"),
                                          (pytest.approx(3e-3), "10steps", "lr0.003")]
    assert calls[3] == (1e-3, "70steps", "run", False, "")  # the best, afresh, with the search off
    assert all(c[4] == "" for c in calls)
    assert results["search"]["best_lr"] == 1e-3 and len(results["search"]["trials"]) == 3
    assert json.loads((tmp_path / "run" / "results.json").read_text())["search"] == results["search"]


def test_search_resume_reuses_finished_trials(tmp_path):
    from budgetlm.stages.search import search_lr

    done = tmp_path / "run" / "search" / "lr0.001"
    done.mkdir(parents=True)
    (done / "results.json").write_text(json.dumps({"accuracy": 0.9, "steps": 10, "learned": True}))
    calls, train_once = fake_runs({})
    results = search_lr(search_config("search.factors=[1,3]"), tmp_path / "run", True, "accuracy", train_once)
    assert [c[2] for c in calls] == ["lr0.003", "run"]  # the finished trial was read, not run again
    assert results["search"]["best_lr"] == 1e-3 and calls[-1][0] == 1e-3


def test_a_trial_without_the_figure_is_a_user_error(tmp_path):
    from budgetlm.stages.search import search_lr

    with pytest.raises(UserError, match="reports no 'spearman'"):
        search_lr(search_config(), tmp_path / "run", False, "spearman", fake_runs({})[1])
