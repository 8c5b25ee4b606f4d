"""`finetune --search lr`: a small automatic search (issue #23).

Each value (search.factors x train.lr) trains afresh from the pre-trained model on search.fraction of the budget
in <out>/search/lr<value>/, with its own full schedule, and is scored on the validation data by the task's main
figure. The best value then trains afresh in <out> for the rest of the budget; its results.json gets a `search`
entry with every trial. Finished trials are reused and interrupted ones resumed under --resume, as `evaluate`
reuses its runs. The method's one run is passed in (`train_once`), so this module knows no method.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path
from typing import Callable

from budgetlm.atomic import write_json
from budgetlm.errors import UserError
from budgetlm.stages.config import FinetuneConfig
from budgetlm.train import distributed
from budgetlm.train.checkpoint import list_checkpoints
from budgetlm.train.config import Budget
from budgetlm.train.loop import existing_run_problem

SEARCH_DIR = "search"
TrainOnce = Callable[[FinetuneConfig, Path, bool], dict]  # (cfg, run_dir, resume) -> results


def search_lr(cfg: FinetuneConfig, run_dir: Path, resume: bool, metric: str, train_once: TrainOnce) -> dict:
    """Try each learning rate on a slice of the budget, then train the best for the rest; returns the final
    run's results with a `search` entry (also in run_dir/results.json)."""
    _check(cfg, run_dir, resume, metric)
    trial_budget, rest = split_budget(cfg.train.budget, cfg.search.fraction, len(cfg.search.factors))
    trials = []
    for i, factor in enumerate(cfg.search.factors):
        lr = cfg.train.lr * factor
        if distributed.is_main():
            print(f"== search {i + 1}/{len(cfg.search.factors)}: train.lr={lr:.3g} for {trial_budget}", file=sys.stderr)
        results = _trial(cfg, lr, trial_budget, run_dir / SEARCH_DIR / f"lr{lr:.3g}", resume, train_once)
        if not isinstance(results.get(metric), (int, float)):
            raise UserError(f"--search: the trial with train.lr={lr:.3g} reports no {metric!r} on the validation data")
        trials.append({"lr": lr, metric: results[metric], "steps": results.get("steps"),
                       "learned": results.get("learned")})
    best = max(trials, key=lambda t: -math.inf if math.isnan(t[metric]) else t[metric])
    record = {"param": "lr", "metric": metric, "trial_budget": str(trial_budget), "trials": trials,
              "best_lr": best["lr"], "final_budget": str(rest)}
    if distributed.is_main():
        print(table(record), file=sys.stderr)
    final = copy.deepcopy(cfg)
    final.search.param, final.train.lr, final.train.budget = "", best["lr"], rest
    results = train_once(final, run_dir, resume and bool(list_checkpoints(run_dir)))
    results["search"] = record
    if distributed.is_main():
        write_json(run_dir / "results.json", results)
    return results


def split_budget(budget: Budget, fraction: float, trials: int) -> tuple[Budget, Budget]:
    """(each trial's budget, what is left for the final run) in the budget's own unit."""
    if budget.kind == "seconds":
        each = budget.amount * fraction
    else:
        each = max(1, int(budget.amount * fraction))
    rest = budget.amount - trials * each
    if rest <= 0 or (budget.kind != "seconds" and rest < 1):
        raise UserError(f"--search: a budget of {budget} is too small for {trials} trials of {fraction:g} of it "
                        "and a final run; give a larger --budget or a smaller search.fraction")
    return Budget(budget.kind, each), Budget(budget.kind, rest)


def table(record: dict) -> str:
    """The trials, one line each; the chosen one marked with *."""
    metric = record["metric"]
    lines = [f"search over train.lr ({len(record['trials'])} trials of {record['trial_budget']} each, scored by "
             f"{metric} on the validation data):", f"    {'train.lr':>10}  {metric:>12}  {'steps':>6}  learned"]
    for t in record["trials"]:
        mark = "*" if t["lr"] == record["best_lr"] else " "
        learned = "" if t["learned"] is None else str(t["learned"]).lower()
        lines.append(f"  {mark} {t['lr']:>10.3g}  {t[metric]:>12.4f}  {t['steps'] or 0:>6}  {learned}")
    lines.append(f"continuing with train.lr={record['best_lr']:.3g} for {record['final_budget']}")
    return "\n".join(lines)


def check_validation_data(cfg: FinetuneConfig) -> None:
    """The trials are scored on validation data: a built-in task's, a --valid file, or a held-out share of train."""
    d = cfg.data
    if not (d.task or d.valid or d.valid_every):
        raise UserError("--search scores each learning rate on the validation data: give --valid FILE "
                        "(or data.valid_every=N to hold out every N-th training example)")


def _check(cfg: FinetuneConfig, run_dir: Path, resume: bool, metric: str) -> None:
    """Before anything trains: validation data to score on, a figure to score by, no run to overwrite."""
    check_validation_data(cfg)
    if not metric:
        raise UserError("--search needs a run judged by one figure on its validation data (one task; not --method prompt)")
    trials_dir = run_dir / SEARCH_DIR
    if not resume:
        problem = existing_run_problem(run_dir, False)
        if problem is None and trials_dir.is_dir() and any(trials_dir.iterdir()):
            problem = f"{run_dir} already holds a search; pass --resume to continue it or choose another --out"
        if problem:
            raise UserError(problem)


def _trial(cfg: FinetuneConfig, lr: float, budget: Budget, trial_dir: Path, resume: bool, train_once: TrainOnce) -> dict:
    """One trial's results: a finished one's (under --resume), else trained (resumed if it was interrupted)."""
    done = trial_dir / "results.json"
    if resume and done.exists():
        return json.loads(done.read_text())
    trial = copy.deepcopy(cfg)
    trial.search.param, trial.train.lr, trial.train.budget = "", lr, budget
    trial.data.test = ""  # trials are judged on the validation data only
    return train_once(trial, trial_dir, resume and bool(list_checkpoints(trial_dir)))
