"""`budgetlm finetune`: a pre-trained encoder + one head per task, trained through the one loop; an
encoder-decoder trained text-to-text (stages/text2text.py); or a decoder prompted with label words (no training).

Head method: one task (`data` / --task / --train) or several (`tasks:` in the config: one shared encoder, one
head per task, each batch drawn from one task). Any task type in tasks/registry.py; the stage never asks which.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from budgetlm import runtime
from budgetlm.atomic import write_json
from budgetlm.data.batches import ExampleBatches
from budgetlm.errors import UserError
from budgetlm.models import HEAD_KINDS, Model, count_parameters
from budgetlm.models.io import model_meta, save_model
from budgetlm.models.load import load
from budgetlm.stages.common import prepare_run_dir
from budgetlm.stages.config import FinetuneConfig
from budgetlm.stages.text2text import finetune_text2text
from budgetlm.tasks.base import Split, TaskType, take
from budgetlm.tasks.classification import classification_metrics, label_ids, label_names, read_examples
from budgetlm.tasks.config import TaskDataConfig
from budgetlm.tasks.multitask import MultiTaskBatches, sampling_probs
from budgetlm.tasks.prompting import demonstrations, score_labels, verbaliser_map, warn_truncated
from budgetlm.tasks.registry import TASK_TYPES
from budgetlm.tasks.resolve import TaskSpec, resolve_task
from budgetlm.tokenizer import load_tokenizer
from budgetlm.train import distributed
from budgetlm.train.logs import plot_loss
from budgetlm.train.loop import train

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
    train_data = kind.read(spec.train, spec.columns)
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


def is_embedding_task(cfg: FinetuneConfig) -> bool:
    """--task-type embedding, or a built-in embedding task (stsb); the other task types go through TASK_TYPES."""
    from budgetlm.stages.finetune_embedding import EMBEDDING_TASKS

    return cfg.data.task_type == "embedding" or (not cfg.data.task_type and cfg.data.task in EMBEDDING_TASKS)


def finetune(cfg: FinetuneConfig, model_path: str | Path, run_dir: str | Path, resume: bool = False, scratch: bool = False,
             trust_pickle: bool = False) -> dict:
    """Dispatch on the task type (embedding), then on `cfg.method` (default: the model family's own, DEFAULT_METHODS)."""
    runtime.resolve(cfg.train)  # before the model is loaded; each method records it in its config.json
    embedding = not cfg.tasks and is_embedding_task(cfg)
    if cfg.data.select_every and (cfg.method not in ("", "head") or embedding):
        raise UserError("data.select_every applies to training a classification or tagging head, "
                        "not to embedding, text2text or prompt runs")
    if cfg.data.group_by_length and cfg.method not in ("", "head"):
        raise UserError("data.group_by_length applies to classification, tagging and embedding runs, "
                        "not to text2text or prompt runs")
    if embedding:
        from budgetlm.stages.finetune_embedding import finetune_embedding

        return finetune_embedding(cfg, model_path, run_dir, resume=resume, scratch=scratch, trust_pickle=trust_pickle)
    run_dir = Path(run_dir)
    if not Path(model_path).exists():  # before reading any data
        raise UserError("model path not found", path=str(model_path))
    if cfg.method == "head":
        return finetune_heads(cfg, model_path, run_dir, resume, scratch, trust_pickle=trust_pickle)
    pretrained, meta, tok_file = load(model_path, trust_pickle)
    method = cfg.method or DEFAULT_METHODS[pretrained.cfg.family]
    _check_family(method, pretrained, meta, model_path)
    if method == "head":
        return finetune_heads(cfg, model_path, run_dir, resume, scratch, (pretrained, meta, tok_file))
    files = single_task_files(cfg, method)
    prepare_run_dir(run_dir, resume, inputs=list(files[:2]))
    return METHODS[method](cfg, files, pretrained, tok_file, model_path, run_dir, resume, scratch)


def single_task_files(cfg: FinetuneConfig, method: str) -> tuple:
    """(train, valid, text/input column, label/target column, header) for the text2text and prompt methods."""
    if cfg.tasks:
        raise UserError("multi-task `tasks:` needs --method head (an encoder with one head per task)")
    d = cfg.data
    if d.task:
        spec = resolve_task(d)
        if not spec.valid:
            raise UserError(f"--method {method} needs a validation file; built-in task {d.task} has none")
        return spec.train, spec.valid, spec.columns.text, spec.columns.label, spec.columns.header
    if not d.train or not d.valid:
        raise UserError("give --task NAME, or both --train FILE and --valid FILE")
    return d.train, d.valid, d.text_column, d.label_column or "label", None


def _check_family(method: str, pretrained, meta: dict, model_path) -> None:
    family = pretrained.cfg.family
    if family not in METHOD_FAMILIES[method]:
        raise UserError(f"--method {method} needs a model of family {' or '.join(METHOD_FAMILIES[method])}; "
                        f"this one is a(n) {family} (kind {meta.get('kind')})", path=str(model_path))


def finetune_heads(cfg: FinetuneConfig, model_path, run_dir: Path, resume: bool, scratch: bool, loaded=None,
                   trust_pickle: bool = False) -> dict:
    """A pre-trained encoder + one head per task (one task, or a `tasks:` list)."""
    machine = runtime.resolve(cfg.train)
    multi = bool(cfg.tasks)
    specs = [resolve_task(section) for section in _sections(cfg)]
    if multi:
        _check_task_names([s.name for s in specs])
    prepare_run_dir(run_dir, resume, inputs=[f for s in specs for f in s.files()])
    pretrained, meta, tok_file = loaded or load(model_path, trust_pickle)
    _check_family("head", pretrained, meta, model_path)
    for spec in specs:
        print(f"task {spec.name}: {spec.inferred}", file=sys.stderr)

    model_cfg = cfg.backbone(pretrained.cfg)
    tok = load_tokenizer(tok_file)
    tasks = []
    for spec, section in zip(specs, _sections(cfg)):
        max_len = min(section.max_seq_len or model_cfg.max_seq_len, model_cfg.max_seq_len)
        head = spec.name if multi else SINGLE_HEAD[TASK_TYPES[spec.task_type].head_kind]
        tasks.append(prepare_task(spec, tok, max_len, head))

    torch.manual_seed(cfg.train.seed)
    heads = {t.head: HEAD_KINDS[t.kind.head_kind](model_cfg, cfg.head, len(t.labels)) for t in tasks}
    model = Model(model_cfg, heads)
    if not scratch:
        model.encoder.load_state_dict(pretrained.encoder.state_dict())
    del pretrained
    probs = sampling_probs([len(t.train) for t in tasks], cfg.multitask.sampling, cfg.multitask.temperature)
    if distributed.is_main():
        print(f"fine-tuning {'a randomly initialised' if scratch else 'the pre-trained'} encoder "
              f"({count_parameters(model) / 1e6:.1f}M parameters) on "
              + "; ".join(f"{t.spec.name}: {len(t.train):,} train / {len(t.valid):,} valid"
                          + (f" / {len(t.test):,} test" if t.test else "")
                          + (f" / {len(t.select):,} held out for selection" if t.select else "") + f", {len(t.labels)} labels"
                          + (f", p={p:.2f}" if multi else "") for t, p in zip(tasks, probs)), file=sys.stderr)
        write_json(run_dir / "config.json", {"stage": "finetune", **dataclasses.asdict(cfg), "resolved": {
            "model": str(model_path), "scratch": scratch, "sampling_probs": probs,
            "tasks": [{**dataclasses.asdict(t.spec), "labels": t.labels} for t in tasks], "ranks": distributed.world().size,
            "runtime": machine}})

    def step_fn(model, batch, step, micro):
        t = tasks[batch["task"]]
        hidden = model.encoder(batch["ids"], batch["token_type_ids"], batch["attention_mask"])  # (B, T, D)
        logits = model.heads[t.head](hidden, batch["attention_mask"])
        return t.kind.loss(logits, batch["labels"]), int(batch["attention_mask"].sum()), {}

    def evaluate(model):
        return {**_metrics(tasks, model, multi, lambda t: t.valid, prefix=""),
                **_metrics([t for t in tasks if t.select], model, multi, lambda t: t.select, prefix="select_")}

    sources = [ExampleBatches(t.train.ids, t.train.targets, cfg.train.batch_size, cfg.train.seed + i, t.train.type_ids,
                              group_by_length=section.group_by_length)
               for i, (t, section) in enumerate(zip(tasks, _sections(cfg)))]
    batches = MultiTaskBatches(sources, probs, cfg.train.seed)
    state = train(model, batches, step_fn, cfg.train, run_dir, evaluate=evaluate, resume=resume, desc="finetune")
    results = state.last_eval()
    if not distributed.is_main():  # rank 0 reports for the whole process group
        return results
    results.update(_metrics([t for t in tasks if t.test], model, multi, lambda t: t.test, prefix="test_"))
    results.update({"steps": state.step, "train_seconds": round(state.elapsed, 1), "scratch": scratch,
                    "pretrained": str(model_path)})
    results["tasks"] = {t.spec.name: {"task_type": t.spec.task_type, "main_metric": t.kind.main_metric,
                                      "labels": t.labels, "train_file": t.spec.train, "valid_file": t.spec.valid,
                                      "test_file": t.spec.test} for t in tasks}
    if not multi:  # a single task's facts at the top level, as before multi-task runs existed
        results.update({"task_type": tasks[0].spec.task_type, "labels": tasks[0].labels, "valid_file": tasks[0].spec.valid})
    kind = "multitask" if multi else SINGLE_KIND[tasks[0].kind.head_kind]
    extra = {}
    if kind == "classifier":  # the keys the HF export reads
        extra = {"head": dataclasses.asdict(cfg.head), "labels": tasks[0].labels}
    save_model(model, run_dir / "model", model_meta(model, kind, **extra, heads={t.head: t.head_meta(cfg.head) for t in tasks},
                                                      stage="finetune", results=results), tok_file)
    write_json(run_dir / "results.json", results)
    plot_loss(run_dir)
    return results


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




def finetune_prompt(cfg: FinetuneConfig, files: tuple, model, tok_file: Path, model_path, run_dir: Path,
                    resume: bool, scratch: bool) -> dict:
    """Zero-/few-shot classification with a decoder: score each label's verbaliser; nothing is trained."""
    machine = runtime.resolve(cfg.train)
    if resume or scratch:
        raise UserError("--method prompt trains nothing: --resume and --scratch do not apply")
    train_file, valid_file, text_col, label_col, header = files
    train_ex = read_examples(train_file, text_col, label_col, header)
    valid_ex = read_examples(valid_file, text_col, label_col, header)
    names = label_names(train_ex)
    gold = label_ids(valid_ex, names)
    words = verbaliser_map(cfg.prompt, names, cfg.data.task)
    prefix = demonstrations(cfg.prompt, train_ex, words)
    write_json(run_dir / "config.json", {"stage": "finetune", **dataclasses.asdict(cfg), "resolved": {
        "model": str(model_path), "train_file": train_file, "valid_file": valid_file, "labels": names,
        "verbalisers": words, "demonstrations": prefix, "runtime": machine}})
    print(f"{cfg.prompt.shots}-shot prompting: scoring {len(names)} verbalisers ({', '.join(words.values())}) "
          f"for {len(valid_ex.texts):,} examples", file=sys.stderr)
    t0 = time.perf_counter()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    scores, truncated = score_labels(model, load_tokenizer(tok_file), cfg.prompt, prefix, valid_ex.texts, list(words.values()))
    warn_truncated(truncated, len(valid_ex.texts))
    results = classification_metrics(scores, gold)
    results.update({"method": "prompt", "shots": cfg.prompt.shots, "truncated_prompts": truncated,
                    "seconds": round(time.perf_counter() - t0, 1), "valid_file": valid_file, "labels": names,
                    "verbalisers": words, "pretrained": str(model_path)})
    write_json(run_dir / "results.json", results)
    return results


METHODS = {"text2text": finetune_text2text, "prompt": finetune_prompt}  # "head": finetune_heads
METHOD_FAMILIES = {"head": ("encoder",), "text2text": ("encoder_decoder",), "prompt": ("decoder",)}
DEFAULT_METHODS = {"encoder": "head", "encoder_decoder": "text2text", "decoder": "prompt"}
