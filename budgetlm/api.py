"""The Python API: `budgetlm.pretrain`, `finetune`, `evaluate` and `export`, one function per command.

Each keyword argument is the command's flag of the same name (`--text-column` -> `text_column`), with the same
default, and each call runs exactly what the command runs: cli.execute builds the config from these values the way
the command line does (defaults < `config` preset or YAML < flags < `overrides`) and calls the same stage. File
arguments take `str` or `pathlib.Path`; `overrides` takes the `key=value` strings of the command line or a mapping
`{"train.lr": 1e-3}`. Mistakes raise `budgetlm.errors.UserError` with the message the command would print.

    import budgetlm
    budgetlm.pretrain(train=["corpus.txt"], valid="held_out.txt", budget="20m", out="runs/pt")
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Union

from budgetlm.cli import execute

PathLike = Union[str, os.PathLike]
Overrides = Union[Sequence[str], Mapping[str, object]]


def pretrain(*, train: PathLike | Sequence[PathLike] | None = None, valid: PathLike | None = None,
             tokenizer: PathLike | None = None, config: PathLike | None = None, budget: str | None = None,
             out: PathLike = "runs/pretrain", resume: bool = False, overrides: Overrides = ()) -> dict:
    """`budgetlm pretrain`: train a tokenizer (unless `tokenizer` is given) and pre-train a model on `train`
    within `budget` ("90s", "20m", "3000steps", "2Mtokens"); returns the final evaluation (also in
    out/results.json); the model is in out/model."""
    return execute("pretrain", dict(train=_paths(train), valid=_path(valid), tokenizer=_path(tokenizer),
                                    config=_path(config), budget=budget, out=str(out), resume=resume,
                                    overrides=_overrides(overrides)))


def finetune(*, model: PathLike, task: str | None = None, train: PathLike | None = None, valid: PathLike | None = None,
             test: PathLike | None = None, task_type: str | None = None, text_column: str | None = None,
             text_b_column: str | None = None, label_column: str | None = None, method: str | None = None,
             shots: int | None = None, search: str | None = None, scratch: bool = False,
             config: PathLike | None = None, budget: str | None = None, out: PathLike = "runs/finetune",
             resume: bool = False, trust_pickle: bool = False, overrides: Overrides = ()) -> dict:
    """`budgetlm finetune`: fine-tune `model` (a run, model or transformers directory) on a built-in `task` or on
    your `train`/`valid` files (the task type is inferred and printed; training starts from that type's tuned
    preset); `search="lr"` tries a few learning rates first. Returns the validation and test figures (also in
    out/results.json)."""
    return execute("finetune", dict(model=str(model), task=task, train=_path(train), valid=_path(valid),
                                    test=_path(test), task_type=task_type, text_column=text_column,
                                    text_b_column=text_b_column, label_column=label_column, method=method,
                                    shots=shots, search=search, scratch=scratch,
                                    config=_path(config), budget=budget, out=str(out),
                                    resume=resume, trust_pickle=trust_pickle, overrides=_overrides(overrides)))


def evaluate(model: PathLike, *, tasks: str | Sequence[str] = "sst2,mrpc,wikiann", budget: str | None = None,
             budgets: str | Mapping[str, str] | None = None, seeds: int = 1, scratch: bool = False,
             out: PathLike = "runs/evaluate", trust_pickle: bool = False, overrides: Overrides = ()) -> dict:
    """`budgetlm evaluate`: fine-tune `model` on each built-in task with its preset (`budgets`: per task, e.g.
    {"mrpc": "2m"}) for `seeds` seeds; returns the report (also out/report.json, report.md, report.png):
    {"model", "scratch", "average", "scores": [{"task", "metric", "value", "values", ...}]}."""
    if budgets is not None and not isinstance(budgets, str):
        budgets = ",".join(f"{task}={value}" for task, value in budgets.items())
    return execute("evaluate", dict(model=str(model), tasks=tasks if isinstance(tasks, str) else ",".join(tasks),
                                    budget=budget, budgets=budgets, seeds=seeds, scratch=scratch, out=str(out),
                                    trust_pickle=trust_pickle, overrides=_overrides(overrides)))


def export(run_dir: PathLike, *, out: PathLike, format: str = "hf", trust_pickle: bool = False) -> Path:
    """`budgetlm export`: write the model of `run_dir` as a transformers (or, for an embedding model,
    sentence-transformers) directory `out`, checked against budgetlm on a probe batch; returns `out`."""
    return execute("export", dict(run_dir=str(run_dir), out=str(out), format=format, trust_pickle=trust_pickle))


# ----------------------------------------------------------------------------------------------- arguments

def _path(value: PathLike | None) -> str | None:
    return None if value is None else os.fspath(value)


def _paths(value: PathLike | Sequence[PathLike] | None) -> list[str] | None:
    """One file or several, as the command line's `--train FILE...` gives them."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def _overrides(overrides: Overrides) -> list[str]:
    """`key=value` strings as typed on the command line; a mapping's values are written as YAML reads them back."""
    if isinstance(overrides, Mapping):
        return [f"{key}={_value(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps([os.fspath(v) if isinstance(v, os.PathLike) else v for v in value])
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
