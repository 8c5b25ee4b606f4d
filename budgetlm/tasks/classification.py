"""Sentence and sentence-pair classification: labelled tables, label sets, loss, accuracy / F1.

A pair is encoded `[CLS] A [SEP] B [SEP]` with segment ids 0 for `[CLS] A [SEP]` and 1 for `B [SEP]`
(the tokenizer's pair template), so the encoder's segment embedding tells the two texts apart.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score

from budgetlm.data.readers import ReadStats, iter_jsonl, pick_text_column, read_table
from budgetlm.errors import UserError
from budgetlm.tasks.base import Columns, Split, TaskType, predict_logits


@dataclass
class Examples:
    texts: list[str]
    labels: list[str]
    lines: list[int]
    path: str
    texts_b: list[str] | None = None  # second texts of pairs


def read_examples(path: str | Path, text_column: str, label_column: str, header: tuple[str, ...] | None = None,
                  text_b_column: str = "") -> Examples:
    p = Path(path)
    stats = ReadStats()
    texts, texts_b, labels, lines = [], [], [], []
    if p.suffix.lower() == ".jsonl":
        for line_no, obj in iter_jsonl(p, stats):
            col = text_column or next((k for k in ("text", "sentence") if k in obj), "text")
            needed = [col] + ([text_b_column] if text_b_column else []) + [label_column]
            if any(k not in obj for k in needed):
                raise UserError(f"needs fields {' and '.join(map(repr, needed))}", path=str(p), line=line_no)
            texts.append(str(obj[col]).strip())
            texts_b.append(str(obj[text_b_column]).strip() if text_b_column else "")
            labels.append(str(obj[label_column]).strip())
            lines.append(line_no)
    else:
        table = read_table(p, stats, header=list(header) if header else None)
        col = pick_text_column(table.header, text_column, p)
        cols = ", ".join(table.header)
        if label_column not in table.header:
            raise UserError(f"no label column {label_column!r}; columns are: {cols} (use --label-column)", path=str(p))
        if text_b_column and text_b_column not in table.header:
            raise UserError(f"no column {text_b_column!r} for the second text; columns are: {cols} (use --text-b-column)", path=str(p))
        ti, li = table.header.index(col), table.header.index(label_column)
        bi = table.header.index(text_b_column) if text_b_column else None
        for line_no, row in table.rows:
            texts.append(row[ti].strip())
            texts_b.append(row[bi].strip() if bi is not None else "")
            labels.append(row[li].strip())
            lines.append(line_no)
    keep = []
    for i, (a, b, label) in enumerate(zip(texts, texts_b, labels)):
        if not label:
            raise UserError("empty label", path=str(p), line=lines[i])
        if not a or (text_b_column and not b):
            stats.skipped_empty += 1
            continue
        keep.append(i)
    stats.warn()
    if stats.skipped_empty:
        print(f"warning: {p}: skipped {stats.skipped_empty} example(s) with empty text", file=sys.stderr)
    if not keep:
        raise UserError("no examples found", path=str(p))
    return Examples([texts[i] for i in keep], [labels[i] for i in keep], [lines[i] for i in keep], str(p),
                    [texts_b[i] for i in keep] if text_b_column else None)


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


def encode_ids_and_type_ids(tok, examples: Examples, max_len: int) -> tuple[list[list[int]], list[list[int]]]:
    """(ids, segment ids): `[CLS] A [SEP]`, or `[CLS] A [SEP] B [SEP]` truncated longest-first to max_len."""
    tok.enable_truncation(max_len)
    inputs = list(zip(examples.texts, examples.texts_b)) if examples.texts_b is not None else examples.texts
    encs = tok.encode_batch(inputs)
    return [e.ids for e in encs], [e.type_ids for e in encs]


def classification_metrics(logits: torch.Tensor, gold: list[int], labels: list[str] | None = None) -> dict:
    """accuracy, macro-F1 and weighted F1 (per-class F1 weighted by the class's share of `gold`, as RuSentiment reports);
    for binary 0/1 labels also F1 of class '1' (the GLUE MRPC/QQP convention)."""
    pred = logits.argmax(-1).tolist()
    out = {"accuracy": accuracy_score(gold, pred), "macro_f1": f1_score(gold, pred, average="macro", zero_division=0),
           "weighted_f1": f1_score(gold, pred, average="weighted", zero_division=0)}
    if labels == ["0", "1"]:
        out["f1"] = f1_score(gold, pred, pos_label=1, average="binary", zero_division=0)
    return out


class SequenceClassification(TaskType):
    head_kind = "sequence"
    main_metric = "accuracy"

    def __init__(self, name: str, pair: bool):
        self.name, self.pair = name, pair
        self.description = "sentence-pair classification" if pair else "sentence classification"

    def read(self, path: str, columns: Columns) -> Examples:
        if self.pair and not columns.text_b:
            raise UserError("pair classification needs two text columns (give --text-column and --text-b-column)", path=path)
        return read_examples(path, columns.text, columns.label, columns.header, columns.text_b if self.pair else "")

    def label_space(self, train: Examples) -> list[str]:
        return label_names(train)

    def encode(self, tok, data: Examples, labels: list[str], max_len: int) -> Split:
        ids, types = encode_ids_and_type_ids(tok, data, max_len)
        return Split(data, ids, types, label_ids(data, labels))

    def loss(self, logits, targets):
        return F.cross_entropy(logits, targets)

    def metrics(self, model, head: str, split: Split, labels: list[str]) -> dict:
        logits = torch.stack(predict_logits(model, head, split.ids, split.type_ids))
        return classification_metrics(logits, split.targets, labels)

    def predict(self, model, head: str, split: Split, labels: list[str]) -> list[str]:
        logits = predict_logits(model, head, split.ids, split.type_ids)
        return [labels[int(l.argmax())] for l in logits]
