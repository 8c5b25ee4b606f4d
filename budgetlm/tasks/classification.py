"""Sentence classification: labelled-file reading, label sets, loss, and accuracy / macro-F1."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score

from budgetlm.config import TaskDataConfig
from budgetlm.data.batches import pad_batch
from budgetlm.data.readers import ReadStats, iter_jsonl, pick_text_column, read_table
from budgetlm.data.root import in_root
from budgetlm.errors import UserError


@dataclass(frozen=True)
class BuiltinTask:
    train: tuple[str, ...]
    valid: tuple[str, ...]
    text_column: str
    label_column: str
    header: tuple[str, ...] | None = None  # column names for files without a header row


BUILTIN_TASKS = {
    # GLUE SST-2: dev is the public evaluation split
    "sst2": BuiltinTask(("sst2", "train.tsv"), ("sst2", "dev.tsv"), "sentence", "label"),
    # AG News (descriptions only): the data root has a 10k training sample and the official test set
    "agnews": BuiltinTask(("agnews", "dev.tsv"), ("agnews", "test.tsv"), "text", "label", header=("text", "label")),
}


@dataclass
class Examples:
    texts: list[str]
    labels: list[str]
    lines: list[int]
    path: str


def read_examples(path: str | Path, text_column: str, label_column: str, header: tuple[str, ...] | None = None) -> Examples:
    p = Path(path)
    stats = ReadStats()
    texts, labels, lines = [], [], []
    if p.suffix.lower() == ".jsonl":
        for line_no, obj in iter_jsonl(p, stats):
            col = text_column or next((k for k in ("text", "sentence") if k in obj), "text")
            if col not in obj or label_column not in obj:
                raise UserError(f"needs fields {col!r} and {label_column!r}", path=str(p), line=line_no)
            texts.append(str(obj[col]))
            labels.append(str(obj[label_column]))
            lines.append(line_no)
    else:
        table = read_table(p, stats, header=list(header) if header else None)
        col = pick_text_column(table.header, text_column, p)
        if label_column not in table.header:
            raise UserError(f"no label column {label_column!r}; columns are: {', '.join(table.header)} (use --label-column)", path=str(p))
        ti, li = table.header.index(col), table.header.index(label_column)
        for line_no, row in table.rows:
            text, label = row[ti].strip(), row[li].strip()
            if not label:
                raise UserError("empty label", path=str(p), line=line_no)
            if not text:
                stats.skipped_empty += 1
                continue
            texts.append(text)
            labels.append(label)
            lines.append(line_no)
    stats.warn()
    if stats.skipped_empty:
        print(f"warning: {p}: skipped {stats.skipped_empty} example(s) with empty text", file=sys.stderr)
    if not texts:
        raise UserError("no examples found", path=str(p))
    return Examples(texts, labels, lines, str(p))


def resolve_task_files(cfg: TaskDataConfig) -> tuple[str, str, str, str, tuple[str, ...] | None]:
    """(train, valid, text_column, label_column, header) from a built-in task name or explicit files."""
    if cfg.task:
        if cfg.task not in BUILTIN_TASKS:
            raise UserError(f"unknown --task {cfg.task!r}; built-in tasks: {', '.join(BUILTIN_TASKS)}")
        t = BUILTIN_TASKS[cfg.task]
        return str(in_root(*t.train)), str(in_root(*t.valid)), cfg.text_column or t.text_column, t.label_column, t.header
    if not cfg.train or not cfg.valid:
        raise UserError("give --task NAME, or both --train FILE and --valid FILE")
    return cfg.train, cfg.valid, cfg.text_column, cfg.label_column, None


def label_names(train: Examples) -> list[str]:
    names = sorted(set(train.labels))
    if all(_is_int(n) for n in names):
        names = sorted(names, key=int)
    if len(names) == 1:
        print(f"warning: {train.path}: every example has the label {names[0]!r}; a classifier cannot learn from it", file=sys.stderr)
    return names


def label_ids(examples: Examples, names: list[str]) -> list[int]:
    index = {n: i for i, n in enumerate(names)}
    out = []
    for label, line in zip(examples.labels, examples.lines):
        if label not in index:
            raise UserError(f"label {label!r} does not occur in the training data (labels: {', '.join(names)})", path=examples.path, line=line)
        out.append(index[label])
    return out


def _is_int(s: str) -> bool:
    try:
        int(s)
        return True
    except ValueError:
        return False


def classification_step(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    hidden = model.encoder(batch["ids"], batch["token_type_ids"], batch["attention_mask"])  # (B, T, D)
    logits = model.heads["cls"](hidden, batch["attention_mask"])  # (B, C)
    return F.cross_entropy(logits, batch["labels"]), logits


@torch.no_grad()
def predict(model, encoded: list[list[int]], batch_size: int = 128) -> torch.Tensor:
    """Logits (N, C) for encoded examples, in order; batches sorted by length to cut padding."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = pad_batch([encoded[i] for i in idx])
        hidden = model.encoder(batch["ids"], batch["token_type_ids"], batch["attention_mask"])
        logits = model.heads["cls"](hidden, batch["attention_mask"])
        for j, i in enumerate(idx):
            out[i] = logits[j]
    return torch.stack(out)


def classification_metrics(logits: torch.Tensor, gold: list[int]) -> dict:
    pred = logits.argmax(-1).tolist()
    return {"accuracy": accuracy_score(gold, pred), "macro_f1": f1_score(gold, pred, average="macro")}
