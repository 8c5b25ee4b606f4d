"""Text-to-text tasks for the encoder-decoder: (input text, target text) pairs, and generation-based evaluation.

A classification task becomes text-to-text through a verbaliser (SST-2: "0" -> "negative", "1" -> "positive");
any file with an input and a target column is used as it is. Evaluation decodes greedily and scores exact
match of the generated tokens against the target's.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from budgetlm.data.batches import pad_ids
from budgetlm.generate.seq2seq import EOS, generate, strip_generated
from budgetlm.tasks.classification import Examples
from budgetlm.tokenizer import PAD

INPUT_COLUMN, TARGET_COLUMN = "input", "target"  # what a generic text-to-text file calls its columns


def default_columns(path: str | Path, text_column: str, label_column: str) -> tuple[str, str]:
    """Prefer `input` / `target` columns when the user named none and the file's header has them."""
    p = Path(path)
    if p.suffix.lower() not in (".tsv", ".csv"):
        return text_column, label_column
    with open(p, encoding="utf-8-sig", errors="replace", newline="") as f:
        header = next(csv.reader(f, delimiter="\t" if p.suffix.lower() == ".tsv" else ","), [])
    header = [h.strip() for h in header]
    if not text_column and INPUT_COLUMN in header:
        text_column = INPUT_COLUMN
    if label_column == "label" and "label" not in header and TARGET_COLUMN in header:
        label_column = TARGET_COLUMN
    return text_column, label_column


def targets_of(examples: Examples, verbaliser: dict[str, str] | None) -> list[str]:
    return [verbaliser.get(label, label) for label in examples.labels] if verbaliser else list(examples.labels)


def encode_sources(tok, texts: list[str], max_len: int) -> list[list[int]]:
    tok.enable_truncation(max_len)
    return [e.ids for e in tok.encode_batch(texts)]  # [CLS] text [SEP]


def encode_targets(tok, texts: list[str], max_len: int) -> list[list[int]]:
    """Target ids + EOS, cut to max_len tokens in all (EOS kept)."""
    tok.no_truncation()
    return [e.ids[: max_len - 1] + [EOS] for e in tok.encode_batch(texts, add_special_tokens=False)]


@torch.no_grad()
def generate_all(model, sources: list[list[int]], max_new_tokens: int, batch_size: int = 64) -> list[list[int]]:
    """Greedy generations (tokens before EOS) for every source, in order; batches sorted by length."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[list[int]] = [[] for _ in sources]
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        ids = pad_ids([sources[i] for i in idx], PAD)
        rows = generate(model, ids, (ids != PAD).long(), max_new_tokens=max_new_tokens).tolist()
        for i, row in zip(idx, rows):
            out[i] = strip_generated(row)
    return out


def exact_match(generated: list[list[int]], targets: list[list[int]]) -> dict:
    """Fraction of generations equal to their target (EOS excluded), and how many were empty."""
    hits = sum(g == t[:-1] for g, t in zip(generated, targets))
    return {"exact_match": hits / len(targets), "empty_generations": sum(not g for g in generated)}
