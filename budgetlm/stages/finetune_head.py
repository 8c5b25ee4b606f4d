"""The head fine-tuning method: a pre-trained encoder + one head per task, trained through the stage skeleton.

One task (`data` / --task / --train) or several (`tasks:` in the config: one shared encoder, one
head per task, each batch drawn from one task). Any task type in tasks/registry.py; the stage never asks which.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from budgetlm.stages.config import FinetuneConfig
from budgetlm.tasks.config import TaskDataConfig
from budgetlm.data.batches import ExampleBatches
from budgetlm.errors import UserError
from budgetlm.models import HEAD_KINDS, Model, count_parameters
from budgetlm.stages.common import prepare_run_dir
from budgetlm.stages.method import Start, check_family
from budgetlm.stages.skeleton import Recipe, run
from budgetlm.tasks.base import Split, TaskType, concat, take
from budgetlm.tasks.multitask import MultiTaskBatches, sampling_probs
from budgetlm.tasks.registry import TASK_TYPES
from budgetlm.tasks.resolve import TaskSpec, resolve_task
from budgetlm.tokenizer import load_tokenizer
from budgetlm.train import distributed

FAMILIES = ("encoder",)
SINGLE_HEAD = {"sequence": "cls", "token": "tok"}  # head names of single-task models (HF export expects `cls`)
SINGLE_KIND = {"sequence": "classifier", "token": "tagger"}


@dataclass
class PreparedTask:
    spec: TaskSpec
    kind: TaskType
    head: str  # its head's name in model.heads
    labels: list[str]
    train: Split
    valid: Split
    test: Split | None
    select: Split | None = None  # held out of train to pick the best evaluation (data.select_every)

    def head_meta(self, head_cfg) -> dict:
        return {"head_kind": self.kind.head_kind, "task_type": self.spec.task_type, "task": self.spec.name,
                "labels": self.labels, "head": dataclasses.asdict(head_cfg)}


def prepare_task(spec: TaskSpec, tok, max_len: int, head: str) -> PreparedTask:
    """Read, split, label and encode one task's files; every bad input surfaces here, before training."""
    kind = TASK_TYPES[spec.task_type]
    train_data = concat([kind.read(f, spec.columns) for f in spec.train_files()])
    if spec.valid:
        valid_data = kind.read(spec.valid, spec.columns)
    else:
        train_data, valid_data = _hold_out(train_data, spec.valid_every, "validation", spec.train)
    select_data = None
    if spec.select_every:
        train_data, select_data = _hold_out(train_data, spec.select_every, "selection", spec.train)
    labels = kind.label_space(train_data)
    test_data = kind.read(spec.test, spec.columns) if spec.test else None
    if spec.max_eval_examples:
        valid_data, test_data = (_first(d, spec.max_eval_examples) if d is not None else None for d in (valid_data, test_data))

    def encode(data):
        return kind.encode(tok, data, labels, max_len) if data is not None else None

    return PreparedTask(spec, kind, head, labels, encode(train_data), encode(valid_data), encode(test_data), encode(select_data))


def _hold_out(data, every: int, what: str, path: str):
    """(kept, held): a deterministic hold-out of every `every`-th example (index % every == 0)."""
    n = len(data.lines)
    held = [i for i in range(n) if i % every == 0]
    kept = [i for i in range(n) if i % every]
    if not kept:
        raise UserError(f"too few examples ({n}) to hold out every {every}th for {what}", path=path)
    return take(data, kept), take(data, held)


def _first(data, n: int):
    return take(data, list(range(min(n, len(data.lines)))))


def _sections(cfg: FinetuneConfig) -> list[TaskDataConfig]:
    return list(cfg.tasks) if cfg.tasks else [cfg.data]


def head_main_metric(cfg: FinetuneConfig) -> str:
    """The figure a one-task run is judged by (its TaskSpec's main_metric: a built-in task's own, else its type's);
    "" for several tasks."""
    return "" if cfg.tasks else resolve_task(cfg.data).main_metric


def head_input_files(cfg: FinetuneConfig) -> list[str]:
    return [f for section in _sections(cfg) for f in resolve_task(section).files()]


def finetune_head(cfg: FinetuneConfig, start: Start, run_dir: Path, resume: bool, scratch: bool) -> dict:
    """A pre-trained encoder + one head per task (one task, or a `tasks:` list)."""
    if not Path(start.path).exists():  # before reading any data
        raise UserError("model path not found", path=str(start.path))
    multi = bool(cfg.tasks)
    specs = [resolve_task(section) for section in _sections(cfg)]
    if multi:
        _check_task_names([s.name for s in specs])
    for spec in specs:
        if TASK_TYPES[spec.task_type].method:
            raise UserError(f"task {spec.name} is a(n) {spec.task_type} task, trained on its own (--task-type "
                            f"{spec.task_type}), not with a classification or tagging head")
    resume = prepare_run_dir(run_dir, resume, inputs=[f for s in specs for f in s.files()])
    check_family("head", FAMILIES, start)
    pretrained, _, tok_file = start.load()
    for spec in specs:
        print(f"task {spec.name}: {spec.inferred}", file=sys.stderr)

    model_cfg = cfg.backbone(pretrained.cfg)
    del pretrained
    tok = load_tokenizer(tok_file)
    tasks = []
    for spec, section in zip(specs, _sections(cfg)):
        max_len = min(section.max_seq_len or model_cfg.max_seq_len, model_cfg.max_seq_len)
        head = spec.name if multi else SINGLE_HEAD[TASK_TYPES[spec.task_type].head_kind]
        tasks.append(prepare_task(spec, tok, max_len, head))
    probs = sampling_probs([len(t.train) for t in tasks], cfg.multitask.sampling, cfg.multitask.temperature)
    sources = [ExampleBatches(t.train.ids, t.train.targets, cfg.train.batch_size, cfg.train.seed + i, t.train.type_ids,
                              group_by_length=section.group_by_length)
               for i, (t, section) in enumerate(zip(tasks, _sections(cfg)))]

    def build():
        heads = {t.head: HEAD_KINDS[t.kind.head_kind](model_cfg, cfg.head, len(t.labels)) for t in tasks}
        model = Model(model_cfg, heads)
        if not scratch:
            model.encoder.load_state_dict(start.load()[0].encoder.state_dict())
        start.release()
        return model

    def describe(model) -> str:
        return (f"fine-tuning {'a randomly initialised' if scratch else 'the pre-trained'} encoder "
                f"({count_parameters(model) / 1e6:.1f}M parameters) on "
                + "; ".join(f"{t.spec.name}: {len(t.train):,} train / {len(t.valid):,} valid"
                            + (f" / {len(t.test):,} test" if t.test else "")
                            + (f" / {len(t.select):,} held out for selection" if t.select else "") + f", {len(t.labels)} labels"
                            + (f", p={p:.2f}" if multi else "") for t, p in zip(tasks, probs)))

    def step_fn(model, batch, step, micro):
        t = tasks[batch["task"]]
        hidden = model.encoder(batch["ids"], batch["token_type_ids"], batch["attention_mask"])  # (B, T, D)
        logits = model.heads[t.head](hidden, batch["attention_mask"])
        return t.kind.loss(logits, batch["labels"]), int(batch["attention_mask"].sum()), {}

    def evaluate(model):
        return {**_metrics(tasks, model, multi, lambda t: t.valid, prefix=""),
                **_metrics([t for t in tasks if t.select], model, multi, lambda t: t.select, prefix="select_")}

    resolved = {"model": str(start.path), "scratch": scratch, "sampling_probs": probs,
                "tasks": [{**dataclasses.asdict(t.spec), "labels": t.labels} for t in tasks], "ranks": distributed.world().size}
    kind = "multitask" if multi else SINGLE_KIND[tasks[0].kind.head_kind]
    recipe = Recipe("finetune", cfg, resolved, build, describe, step_fn, MultiTaskBatches(sources, probs, cfg.train.seed),
                    evaluate, kind, tok_file,
                    final=lambda model, results: _metrics([t for t in tasks if t.test], model, multi, lambda t: t.test, prefix="test_"),
                    report=lambda model, state: _report(tasks, multi, scratch, start.path),
                    meta=lambda model: _meta(tasks, kind, cfg.head), epoch_examples=sum(len(t.train) for t in tasks),
                    main_metric="" if multi else tasks[0].spec.main_metric)
    return run(recipe, cfg.train, run_dir, resume=resume)


def _report(tasks: list[PreparedTask], multi: bool, scratch: bool, model_path) -> dict:
    out = {"scratch": scratch, "pretrained": str(model_path)}
    out["tasks"] = {t.spec.name: {"task_type": t.spec.task_type, "main_metric": t.spec.main_metric,
                                  "labels": t.labels, "train_file": t.spec.train, "valid_file": t.spec.valid,
                                  "test_file": t.spec.test, **({"more_train_files": list(t.spec.train_more)} if t.spec.train_more else {})}
                    for t in tasks}
    if not multi:  # a single task's facts at the top level, as before multi-task runs existed
        out.update({"task_type": tasks[0].spec.task_type, "labels": tasks[0].labels, "valid_file": tasks[0].spec.valid})
    return out


def _meta(tasks: list[PreparedTask], kind: str, head_cfg) -> dict:
    extra = {}
    if kind == "classifier":  # the keys the HF export reads
        extra = {"head": dataclasses.asdict(head_cfg), "labels": tasks[0].labels}
    return {**extra, "heads": {t.head: t.head_meta(head_cfg) for t in tasks}}


def _metrics(tasks: list[PreparedTask], model, multi: bool, split_of, prefix: str) -> dict:
    out = {}
    for t in tasks:
        for k, v in t.kind.metrics(model, t.head, split_of(t), t.labels).items():
            out[f"{t.spec.name}/{prefix}{k}" if multi else f"{prefix}{k}"] = v
    return out


def _check_task_names(names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"tasks: two tasks are named {', '.join(dupes)}; give each a distinct `name`")
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_-]+", n)]
    if bad:
        raise UserError(f"tasks: task names may hold letters, digits, _ and - only: {', '.join(bad)}")
