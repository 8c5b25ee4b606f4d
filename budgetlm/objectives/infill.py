"""BART text infilling and sentence permutation (Lewis et al. 2020, sec. 2.2; fairseq's denoising_dataset.py).

Infilling: round(infill_rate * n) of a sequence's n ordinary tokens are masked, in spans whose lengths are
drawn from Poisson(poisson_lambda) until they cover that many (the last one cut to fit). Every span, a
0-length one included, becomes ONE [MASK] token, so the model must also predict how many tokens are missing
(a 0-length span inserts a [MASK] where nothing is missing). Spans are placed uniformly at random without
overlap: the spans and the kept tokens are shuffled as items of one sequence. The target is the original text.

Sentence permutation (optional, applied first): within each run of ordinary tokens, the sentences (each
ending at a full-stop token) are shuffled. Special tokens ([CLS], [SEP] between documents) are never masked
or moved; a span reaching across one is split there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from budgetlm.data.batches import pad_ids
from budgetlm.objectives.mlm import IGNORE_INDEX

if TYPE_CHECKING:  # annotations only: objectives/config.py reads the package's MASKING_FUNCTIONS
    from budgetlm.objectives.config import ObjectiveConfig


def sample_spans(n: int, cfg: ObjectiveConfig, generator: torch.Generator, breaks: frozenset[int] = frozenset()) -> list[tuple[int, int]]:
    """(start, length) spans over n tokens, in order, never overlapping; lengths sum to round(infill_rate * n).

    A span covering a break b (a special token sits between tokens b - 1 and b) is split there in two spans.
    At most round(infill_rate * n) spans are kept (extra 0-length ones are dropped): each span becomes one
    [MASK], so the input is never longer than the original.
    """
    n_mask = round(n * cfg.infill_rate)
    if n_mask == 0:
        return []
    lengths: list[int] = []
    while sum(lengths) < n_mask:
        lengths += torch.poisson(torch.full((n_mask,), cfg.poisson_lambda), generator=generator).long().tolist()
    total, cut = 0, []
    for length in lengths:  # keep spans until they cover n_mask tokens; the last one is cut to fit
        cut.append(min(length, n_mask - total))
        total += cut[-1]
        if total == n_mask:
            break
    # items: (n - n_mask) kept tokens and len(cut) spans, in a uniformly random order
    n_items = n - n_mask + len(cut)
    span_slots = set(torch.randperm(n_items, generator=generator)[: len(cut)].tolist())
    spans, pos, k = [], 0, 0
    for slot in range(n_items):
        if slot not in span_slots:
            pos += 1
            continue
        inner = [b for b in sorted(breaks) if pos < b < pos + cut[k]]
        bounds = [pos, *inner, pos + cut[k]]
        spans += [(a, b - a) for a, b in zip(bounds, bounds[1:])]
        pos += cut[k]
        k += 1
    zeros = [i for i, (_, length) in enumerate(spans) if length == 0]
    drop = set(zeros[max(0, n_mask - (len(spans) - len(zeros))):])
    return [span for i, span in enumerate(spans) if i not in drop]


def permute_sentences(row: list[int], special: list[bool], sentence_end_ids: set[int], generator: torch.Generator) -> list[int]:
    """Shuffle the sentences inside each run of ordinary tokens; special tokens keep their positions."""
    out, run = [], []

    def flush():
        sentences, current = [], []
        for token in run:
            current.append(token)
            if token in sentence_end_ids:
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
        for i in torch.randperm(len(sentences), generator=generator).tolist():
            out.extend(sentences[i])
        run.clear()

    for token, is_special in zip(row, special):
        if is_special:
            flush()
            out.append(token)
        else:
            run.append(token)
    flush()
    return out


def infill(
    ids: torch.Tensor,  # (B, T) long; trailing pad_id tokens are padding
    special_mask: torch.Tensor,  # (B, T) bool: True where a token must never be masked or moved
    generator: torch.Generator,
    cfg: ObjectiveConfig,
    mask_id: int,
    pad_id: int,
    sentence_end_ids: set[int] = frozenset(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (inputs (B, S) right-padded with pad_id, labels = the original ids (B, T) with padding -100)."""
    inputs = []
    for row, special in zip(ids.tolist(), special_mask.tolist()):
        while row and row[-1] == pad_id:
            row.pop()
        special = special[: len(row)]
        if cfg.permute_sentences:
            row = permute_sentences(row, special, sentence_end_ids, generator)
        ordinary = [i for i in range(len(row)) if not special[i]]
        breaks = frozenset(k for k, i in enumerate(ordinary) if k and i != ordinary[k - 1] + 1)  # a special in between
        spans = sample_spans(len(ordinary), cfg, generator, breaks)
        # per ordinary token: [MASK]s to emit before it (0-length spans), and whether a span hides it
        masks_before = [0] * (len(ordinary) + 1)
        hidden = [False] * len(ordinary)
        for start, length in spans:
            masks_before[start] += 1
            hidden[start:start + length] = [True] * length
        source, k = [], 0
        for i, token in enumerate(row):
            if special[i]:
                source.append(token)
                continue
            source.extend([mask_id] * masks_before[k])
            if not hidden[k]:
                source.append(token)
            k += 1
        source.extend([mask_id] * masks_before[len(ordinary)])
        inputs.append(source)
    labels = ids.masked_fill(ids == pad_id, IGNORE_INDEX)
    return pad_ids(inputs, pad_id), labels
