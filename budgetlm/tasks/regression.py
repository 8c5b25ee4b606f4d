"""Regression on one text or a pair (e.g. STS-B similarity): a numeric label, MSE loss, Pearson / Spearman.

The head is the sequence-classification head with one output; its single "label" is named `score`, so a
saved regressor exports to transformers as a `num_labels=1` (regression) sequence classifier.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy.stats import pearsonr, spearmanr

from budgetlm.errors import UserError
from budgetlm.tasks.base import Columns, Split, TaskType, predict_logits
from budgetlm.tasks.classification import Examples, encode_ids_and_type_ids, read_examples


def numeric_targets(data: Examples) -> list[float]:
    out = []
    for label, line in zip(data.labels, data.lines):
        try:
            value = float(label)
        except ValueError:
            raise UserError(f"label {label!r} is not a number (regression needs numeric labels)", path=data.path, line=line) from None
        if not math.isfinite(value):
            raise UserError(f"label {label!r} is not a finite number", path=data.path, line=line)
        out.append(value)
    return out


def regression_metrics(pred: list[float], gold: list[float]) -> dict:
    p, g = torch.tensor(pred), torch.tensor(gold)
    out = {"mse": float(((p - g) ** 2).mean())}
    constant = len(set(pred)) < 2 or len(set(gold)) < 2  # correlation undefined: report 0 rather than NaN
    out["pearson"] = 0.0 if constant else float(pearsonr(pred, gold).statistic)
    out["spearman"] = 0.0 if constant else float(spearmanr(pred, gold).statistic)
    return out


class Regression(TaskType):
    name = "regression"
    description = "regression"
    head_kind = "sequence"
    main_metric = "spearman"

    def read(self, path: str, columns: Columns) -> Examples:
        data = read_examples(path, columns.text, columns.label, columns.header, columns.text_b)
        numeric_targets(data)  # fail on a non-numeric label while the file name is at hand
        return data

    def label_space(self, train: Examples) -> list[str]:
        return ["score"]

    def encode(self, tok, data: Examples, labels: list[str], max_len: int) -> Split:
        ids, types = encode_ids_and_type_ids(tok, data, max_len)
        return Split(data, ids, types, numeric_targets(data))

    def loss(self, logits, targets):
        return F.mse_loss(logits.squeeze(-1), targets)

    def metrics(self, model, head: str, split: Split, labels: list[str]) -> dict:
        pred = [float(l[0]) for l in predict_logits(model, head, split.ids, split.type_ids)]
        return regression_metrics(pred, split.targets)
