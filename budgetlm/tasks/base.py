"""What every downstream task type provides, and what they share: encoded splits and batched prediction.

A task type (sentence / pair classification, regression, token classification) is a small object with
read -> label_space -> encode -> loss -> metrics. `finetune` runs any of them, alone or several at once,
through the one training loop; it never asks which type it holds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from budgetlm.data.batches import pad_batch


@dataclass(frozen=True)
class Columns:
    """Where a table keeps its fields (resolved or inferred before reading)."""

    text: str = ""
    text_b: str = ""  # second text of a pair; empty = single sentences
    label: str = "label"
    header: tuple[str, ...] | None = None  # column names for files without a header row


@dataclass
class Split:
    """One file's examples, encoded: the raw data (for metrics and line numbers) next to model inputs."""

    data: object  # Examples or TaggedSentences
    ids: list[list[int]]
    type_ids: list[list[int]] | None
    targets: list  # class ids, float targets, or per-token label lists (-100 = no loss)
    extra: dict = field(default_factory=dict)  # per-type extras, e.g. each word's first sub-token position

    def __len__(self) -> int:
        return len(self.ids)


class TaskType:
    """Interface; see classification.py, regression.py, token_classification.py (embedding.py's type is trained
    by its own method, stages/finetune_embedding.py, so it implements none of these)."""

    name: str = ""
    description: str = ""
    head_kind: str = "sequence"  # models.HEAD_KINDS key
    method: str = ""  # the fine-tuning method this type always uses; "" = --method or the model family's default
    main_metric: str = ""

    def read(self, path: str, columns: Columns) -> object:
        raise NotImplementedError

    def label_space(self, train) -> list[str]:
        raise NotImplementedError

    def encode(self, tok, data, labels: list[str], max_len: int) -> Split:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, model, head: str, split: Split, labels: list[str]) -> dict:
        raise NotImplementedError


def take(data, indices: list[int]):
    """A copy of a dataclass of parallel per-example lists (Examples, TaggedSentences) holding `indices` only."""
    n = len(data.lines)
    kw = {}
    for f in dataclasses.fields(data):
        v = getattr(data, f.name)
        kw[f.name] = [v[i] for i in indices] if isinstance(v, list) and len(v) == n else v
    return type(data)(**kw)


def concat(parts: list):
    """One dataclass of parallel per-example lists (Examples, TaggedSentences) holding every part's examples in order
    (several training files read as one set); `path` names every file, other fields come from the first part."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    n = len(first.lines)
    kw = {}
    for f in dataclasses.fields(first):
        v = getattr(first, f.name)
        if isinstance(v, list) and len(v) == n:
            kw[f.name] = [x for part in parts for x in getattr(part, f.name)]
        else:
            kw[f.name] = " + ".join(p.path for p in parts) if f.name == "path" else v
    return type(first)(**kw)


@torch.no_grad()
def predict_logits(model, head: str, ids: list[list[int]], type_ids: list[list[int]] | None,
                   batch_size: int = 128) -> list[torch.Tensor]:
    """Per example, in order: logits (C,) from a sequence head or (T_i, C) from a token head.
    Batches are sorted by length to cut padding."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = pad_batch([ids[i] for i in idx], [type_ids[i] for i in idx] if type_ids is not None else None)
        hidden = model.encoder(batch["ids"], batch["token_type_ids"], batch["attention_mask"])  # (B, T, D)
        logits = model.heads[head](hidden, batch["attention_mask"])  # (B, C) or (B, T, C)
        for j, i in enumerate(idx):
            out[i] = logits[j, : len(ids[i])] if logits.dim() == 3 else logits[j]
    model.train(was_training)
    return out
