"""SpanBERT random-span masking (Joshi et al. 2020, arXiv 1907.10529), on whole words, for encoders.

(The T5-style span corruption with sentinels lives in span.py; this one keeps the sequence length and predicts
every token of a span in place.) Span lengths are counted in words: l ~ Geometric(p) (p = 0.2 in the paper)
restricted to 1..`span_max_words` (10) and renormalised, as the paper's code does, giving a mean of 3.8 words. A span starts at a uniformly drawn word, never
crosses a special token ([SEP] between documents) and never overlaps an earlier span; spans are drawn until
the token budget round(rate * candidates) is met, the last one cut at a word boundary so the budget is not
exceeded (the paper cuts it at a token). 80/10/10 applies per span, as in the paper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from budgetlm.objectives.units import mask_by_units, token_budget, word_index

if TYPE_CHECKING:  # annotations only: objectives/config.py reads the package's MASKING_FUNCTIONS
    from budgetlm.objectives.config import ObjectiveConfig


def geometric_lengths(u: np.ndarray, p: float, max_len: int) -> np.ndarray:
    """Inverse-CDF draws from uniforms u in [0, 1) of Geometric(p) restricted to {1..max_len}:
    P(l = k) = p (1 - p)^(k - 1) / (1 - (1 - p)^max_len)."""
    if p >= 1.0:
        return np.ones(len(u), dtype=np.int64)
    u = u * (1.0 - (1.0 - p) ** max_len)  # the CDF at max_len: rescaling keeps every draw inside 1..max_len
    lengths = 1 + np.floor(np.log1p(-u) / np.log1p(-p)).astype(np.int64)
    return np.clip(lengths, 1, max_len)  # clip only guards float rounding at the edge


def span_units(words: np.ndarray, special: np.ndarray, budget: int, u_len: np.ndarray, u_start: np.ndarray,
               p: float, max_words: int) -> np.ndarray:
    """One row: (T,) unit id per token (spans numbered 0.., -1 elsewhere), from pre-drawn uniforms."""
    n_words = int(words.max()) + 1
    units = np.full(len(words), -1, dtype=np.int64)
    if n_words == 0:
        return units
    on_word = words >= 0
    lens = np.bincount(words[on_word], minlength=n_words)  # tokens per word
    first_token = np.flatnonzero(on_word & np.r_[True, words[1:] != words[:-1]])  # (W,)
    segment = np.cumsum(special)[first_token]  # words in one segment share the count of specials before them
    segment_end = np.searchsorted(segment, segment, side="right")  # (W,) one past the segment's last word
    unit_of_word = np.full(n_words, -1, dtype=np.int64)
    span_len = geometric_lengths(u_len, p, max_words)
    starts = np.minimum((u_start * n_words).astype(np.int64), n_words - 1)
    covered, n_units = 0, 0
    for s, length in zip(starts, span_len):
        if covered >= budget:
            break
        e = min(s + length, segment_end[s])
        if (unit_of_word[s:e] >= 0).any():
            continue  # overlaps an earlier span: draw again
        fits = int(np.searchsorted(np.cumsum(lens[s:e]), budget - covered, side="right"))
        if fits == 0:
            continue
        unit_of_word[s:s + fits] = n_units
        n_units += 1
        covered += int(lens[s:s + fits].sum())
    if n_units == 0:  # not even one word fits the budget: predict the first drawn word anyway
        unit_of_word[starts[0]] = 0
    units[on_word] = unit_of_word[words[on_word]]
    return units


def mask_spans(
    ids: torch.Tensor,  # (B, T) long
    special_mask: torch.Tensor,  # (B, T) bool: never chosen
    generator: torch.Generator,
    cfg: ObjectiveConfig,
    vocab_size: int,
    mask_token_id: int,
    n_special: int = 0,
    word_starts: torch.Tensor | None = None,  # (B, T) bool: True where a token starts a word
) -> tuple[torch.Tensor, torch.Tensor]:
    if word_starts is None:
        raise ValueError("span masking needs word_starts (build the token cache with word_starts=True)")
    B, T = ids.shape
    words = word_index(word_starts, special_mask).numpy()  # (B, T)
    special = special_mask.numpy()
    budget = token_budget(special_mask, cfg.mask_rate)
    rows = []
    for b in range(B):
        attempts = 4 * int(budget[b]) + 16  # spans are rejected only on overlap, so this is plenty
        u = torch.rand(2, attempts, generator=generator, dtype=torch.float64).numpy()
        rows.append(span_units(words[b], special[b], int(budget[b]), u[0], u[1], cfg.span_geometric_p, cfg.span_max_words))
    units = torch.from_numpy(np.stack(rows))  # (B, T)
    n_units = units.max(1).values + 1  # (B,)
    chosen = torch.arange(max(int(n_units.max()), 0))[None, :] < n_units[:, None]  # every span is predicted
    return mask_by_units(units, chosen, ids, generator, cfg, vocab_size, mask_token_id, n_special)
