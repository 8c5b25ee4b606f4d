"""The one skeleton every training stage runs: seed -> build the model -> say what trains and record the config ->
the one training loop -> final figures -> save the model, `results.json` and the loss plot.

A stage (pre-training with one objective, a fine-tuning method) reads and checks its inputs first, then
describes itself as a `Recipe`; `run` owns the steps they all share, so stages differ only in what they build
and what they measure. Under torchrun every rank trains; rank 0 alone reports and writes.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from budgetlm import runtime
from budgetlm.atomic import write_json
from budgetlm.models.io import model_meta, save_model
from budgetlm.train import distributed
from budgetlm.train.logs import plot_loss
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


def run(recipe: Recipe, train_cfg, run_dir: Path, resume: bool = False) -> dict:
    """Train `recipe` through the one loop in `run_dir`; returns the results (also in run_dir/results.json)."""
    machine = runtime.resolve(train_cfg)  # the stage resolved it before reading data; this is its record
    torch.manual_seed(train_cfg.seed)
    model = recipe.build()
    if distributed.is_main():
        print(recipe.describe(model), file=sys.stderr)
        write_json(run_dir / "config.json", {"stage": recipe.stage, **dataclasses.asdict(recipe.config),
                                             "resolved": {**recipe.resolved, "runtime": machine}})

    state = train(model, recipe.batches, recipe.step, train_cfg, run_dir, evaluate=recipe.evaluate, resume=resume,
                  desc=recipe.stage)
    results = state.last_eval()
    if not distributed.is_main():  # rank 0 reports for the whole process group
        return results
    results.update(recipe.final(model, results))
    results.update({"steps": state.step, "train_seconds": round(state.elapsed, 1), **recipe.report(model, state)})
    save_model(model, run_dir / "model", model_meta(model, recipe.kind, **recipe.meta(model), stage=recipe.stage,
                                                      results=results), recipe.tok_file)
    write_json(run_dir / "results.json", results)
    plot_loss(run_dir)
    return results
