"""The one skeleton every training stage runs: seed -> build the model -> say what trains and record the config ->
the one training loop -> final figures -> save the model, `results.json` and the loss plot -> the verdict on whether
the loss left its starting level (train/learned.py).

A stage (pre-training with one objective, a fine-tuning method) reads and checks its inputs first, then
describes itself as a `Recipe`; `run` owns the steps they all share, so stages differ only in what they build
and what they measure. Under torchrun every rank trains; rank 0 alone reports and writes.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from budgetlm import runtime
from budgetlm.atomic import write_json
from budgetlm.errors import UserError
from budgetlm.models.io import model_meta, save_model
from budgetlm.stages.defaults import preset_line
from budgetlm.train import distributed
from budgetlm.train.learned import advice, judge
from budgetlm.train.logs import plot_loss, read_metrics
from budgetlm.train.loop import StepFn, LoopState, train


def _nothing(*args) -> dict:
    return {}


@dataclass
class Recipe:
    """What one stage trains, how, and what it reports; `run` does the rest."""

    stage: str  # "pretrain" / "finetune": config.json's "stage", the loop's progress label, the saved model's stage
    config: Any  # the stage's validated config dataclass, recorded whole in config.json
    resolved: dict  # what the stage resolved from it (files, sizes, ...): config.json's "resolved"
    # constructs the model under torch.manual_seed(train.seed) and copies pre-trained weights into it
    build: Callable[[], torch.nn.Module]
    describe: Callable[[torch.nn.Module], str]  # the line printed before training
    step: StepFn  # (model, batch, step, micro) -> (loss, tokens, metrics)
    batches: Any  # a resumable batch source (data/batches.py)
    evaluate: Callable[[torch.nn.Module], dict]
    kind: str  # the saved model's kind (models/io.py)
    tok_file: Path
    # (model, results so far: the last evaluation's) -> figures once training is over
    final: Callable[[torch.nn.Module, dict], dict] = field(default=_nothing)
    report: Callable[[torch.nn.Module, LoopState], dict] = field(default=_nothing)  # results keys after steps, seconds
    meta: Callable[[torch.nn.Module], dict] = field(default=_nothing)  # more keys for the saved model's config
    # training examples one pass over the data draws (train.eval_per_epoch; results' "epochs"); 0 = unknown
    epoch_examples: int = 0
    main_metric: str = ""  # the evaluation figure train.keep_best=main keeps the best of; "" = none


def run(recipe: Recipe, train_cfg, run_dir: Path, resume: bool = False) -> dict:
    """Train `recipe` through the one loop in `run_dir`; returns the results (also in run_dir/results.json)."""
    machine = runtime.resolve(train_cfg)  # the stage resolved it before reading data; this is its record
    _resolve_evaluation(recipe, train_cfg)  # before config.json, so it records what ran
    if getattr(recipe.config, "preset", "") == "auto":  # built without stages/defaults.py: no preset layer ran
        recipe.config.preset = "none"
    torch.manual_seed(train_cfg.seed)
    model = recipe.build()
    if distributed.is_main():
        if preset_line(recipe.config):
            print(preset_line(recipe.config), file=sys.stderr)
        print(recipe.describe(model), file=sys.stderr)
        write_json(run_dir / "config.json", {"stage": recipe.stage, **dataclasses.asdict(recipe.config),
                                             "resolved": {**recipe.resolved, "runtime": machine}})

    state = train(model, recipe.batches, recipe.step, train_cfg, run_dir, evaluate=recipe.evaluate, resume=resume,
                  desc=recipe.stage)
    results = state.last_eval()
    if not distributed.is_main():  # rank 0 reports for the whole process group
        return results
    results.update(recipe.final(model, results))
    results.update({"steps": state.step, "train_seconds": round(state.elapsed, 1), **_epochs(recipe, state),
                    **recipe.report(model, state)})
    results["preset"] = getattr(recipe.config, "preset", "none")  # the tuned settings it started from (stages/defaults.py)
    results.update(_learned(recipe, train_cfg, state, run_dir))
    save_model(model, run_dir / "model", model_meta(model, recipe.kind, **recipe.meta(model), stage=recipe.stage,
                                                      results=results), recipe.tok_file)
    write_json(run_dir / "results.json", results)
    plot_loss(run_dir)
    return results


def _resolve_evaluation(recipe: Recipe, train_cfg) -> None:
    """train.eval_per_epoch becomes train.eval_every (the optimizer steps of one pass over the training data);
    train.keep_best=main becomes the stage's main figure."""
    if train_cfg.eval_per_epoch and not train_cfg.eval_every and recipe.epoch_examples:
        global_batch = train_cfg.batch_size * train_cfg.grad_accum * distributed.world().size
        train_cfg.eval_every = max(1, math.ceil(recipe.epoch_examples / global_batch))
    if train_cfg.keep_best == "main":
        if not recipe.main_metric:
            raise UserError("train.keep_best=main: this run has no single main figure (a multi-task or pre-training "
                            "run); name the figure to keep the best of, e.g. train.keep_best=<task>/accuracy")
        train_cfg.keep_best = recipe.main_metric


def _epochs(recipe: Recipe, state: LoopState) -> dict:
    """How many passes over the training data the run made (when the stage knows its size)."""
    if not recipe.epoch_examples or not state.global_batch:
        return {}
    return {"epochs": round(state.step * state.global_batch / recipe.epoch_examples, 2)}


def _learned(recipe: Recipe, train_cfg, state: LoopState, run_dir: Path) -> dict:
    """`learned` for results.json (absent with too few log records to tell); a plain warning when it is false."""
    verdict = judge([r["loss"] for r in read_metrics(run_dir) if "loss" in r])
    if verdict is None:
        return {}
    if not verdict.learned:
        print(advice(verdict, state.step, state.elapsed, train_cfg.lr, recipe.stage), file=sys.stderr)
    return {"learned": verdict.learned}
