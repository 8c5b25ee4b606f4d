"""T5 span corruption (Raffel et al. 2020, sec. 3.1.4 and t5.data.preprocessors.random_spans_noise_mask).

round(noise_density * n) of a sequence's n ordinary tokens are dropped, in round(noise / mean_span_length)
spans whose lengths (and the gaps between them) are uniform random compositions, as in T5. Each span is
replaced by one sentinel in the input; the target lists every sentinel followed by the tokens it hides,
then end-of-sequence:

    input   the cat <extra_id_0> on the <extra_id_1> .
    target  <extra_id_0> sat <extra_id_1> mat [SEP]

Special tokens ([CLS], [SEP] between documents) are never dropped: spans are drawn over the ordinary tokens
only, and a span that would straddle a special token is split in two there (each part its own sentinel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from budgetlm.data.batches import pad_ids
from budgetlm.objectives.mlm import IGNORE_INDEX

if TYPE_CHECKING:  # annotations only: objectives/config.py reads the package's MASKING_FUNCTIONS
    from budgetlm.objectives.config import ObjectiveConfig


def sentinel_tokens(n: int) -> list[str]:
    """T5's sentinel spellings, in order of use."""
    return [f"<extra_id_{i}>" for i in range(n)]


def _random_segmentation(n_items: int, n_segments: int, generator: torch.Generator) -> list[int]:
    """Lengths of a uniformly random split of n_items into n_segments non-empty parts."""
    cuts = (torch.randperm(n_items - 1, generator=generator)[: n_segments - 1] + 1).sort().values.tolist()
    bounds = [0, *cuts, n_items]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def random_spans_noise_mask(length: int, cfg: ObjectiveConfig, generator: torch.Generator) -> torch.Tensor:
    """(length,) bool, True = dropped. Like T5: alternating kept/dropped runs, starting with a kept run."""
    mask = torch.zeros(length, dtype=torch.bool)
    if length < 2:
        return mask
    n_noise = min(max(round(length * cfg.noise_density), 1), length - 1)
    n_spans = min(max(round(n_noise / cfg.mean_span_length), 1), n_noise, length - n_noise)
    noise_lengths = _random_segmentation(n_noise, n_spans, generator)
    kept_lengths = _random_segmentation(length - n_noise, n_spans, generator)
    pos = 0
    for kept, noise in zip(kept_lengths, noise_lengths):
        pos += kept
        mask[pos:pos + noise] = True
        pos += noise
    return mask


def corrupt_spans(
    ids: torch.Tensor,  # (B, T) long; trailing pad_id tokens are padding
    special_mask: torch.Tensor,  # (B, T) bool: True where a token must never be dropped
    generator: torch.Generator,
    cfg: ObjectiveConfig,
    sentinel_ids: list[int],  # ids of <extra_id_0>, <extra_id_1>, ...
    eos_id: int,
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (inputs (B, S) right-padded with pad_id, labels (B, L) right-padded with -100)."""
    inputs, targets = [], []
    for row, special in zip(ids.tolist(), special_mask.tolist()):
        while row and row[-1] == pad_id:
            row.pop()
        ordinary = [i for i in range(len(row)) if not special[i]]
        noise = [False] * len(row)
        for i, dropped in zip(ordinary, random_spans_noise_mask(len(ordinary), cfg, generator).tolist()):
            noise[i] = dropped
        source, target, n_spans = [], [], 0
        for i, token in enumerate(row):
            if not noise[i]:
                source.append(token)
                continue
            if i == 0 or not noise[i - 1]:  # a new span: one sentinel in the input, sentinel + tokens in the target
                if n_spans == len(sentinel_ids):
                    raise ValueError(f"span corruption needs more than {len(sentinel_ids)} sentinels for a {len(row)}-token sequence")
                source.append(sentinel_ids[n_spans])
                target.append(sentinel_ids[n_spans])
                n_spans += 1
            target.append(token)
        inputs.append(source)
        targets.append(target + [eos_id])
    return pad_ids(inputs, pad_id), pad_ids(targets, IGNORE_INDEX)


def merge_spans(inputs: list[int], targets: list[int], sentinel_ids: list[int], eos_id: int) -> list[int]:
    """Undo `corrupt_spans` for one row: each sentinel in `inputs` becomes the tokens that follow it in `targets`."""
    sentinels = set(sentinel_ids)
    spans, current = {}, None
    for token in targets:
        if token == eos_id:
            break
        if token in sentinels:
            current = spans.setdefault(token, [])
        elif current is not None:
            current.append(token)
    out = []
    for token in inputs:
        out.extend(spans.get(token, []) if token in sentinels else [token])
    return out
