"""What every unit-level masking strategy shares: words from word starts, the token budget, choosing units until
the budget is met, and the 80/10/10 replacement applied per unit (a unit is masked, randomised or kept whole).

A *unit* is a group of positions masked together: a word (whole-word masking), a matched n-gram (PMI-masking)
or a span of words (SpanBERT). Strategies differ only in how they form units; the rest lives here so the
budget and the replacement behave identically across them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from budgetlm.objectives.mlm import IGNORE_INDEX

if TYPE_CHECKING:  # annotations only: objectives/config.py reads the package's MASKING_FUNCTIONS
    from budgetlm.objectives.config import ObjectiveConfig


def word_index(word_starts: torch.Tensor, special_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) long: the index 0, 1, ... of each token's word within its row, -1 on special positions.

    A word starts where `word_starts` says so, at a row's first token and right after a special token, so a
    word never straddles [CLS]/[SEP]/[PAD]; specials belong to no word.
    """
    starts = word_starts.bool().clone()
    starts[:, 0] = True
    starts[:, 1:] |= special_mask[:, :-1]
    starts &= ~special_mask
    words = starts.long().cumsum(1) - 1  # (B, T)
    return words.masked_fill(special_mask, -1)


def token_budget(special_mask: torch.Tensor, rate: float) -> np.ndarray:
    """(B,) tokens to predict per row: round(rate * candidates), at least one, at most all candidates
    (the same rule as random-token masking, so every strategy predicts the same number of tokens)."""
    n_cand = (~special_mask).sum(1).numpy()
    want = np.maximum(np.round(n_cand * rate), 1).astype(np.int64)
    return np.minimum(want, n_cand)


def choose_units(units: np.ndarray, budget: int, order: np.ndarray) -> np.ndarray:
    """Units (ids 0..U-1 per token, -1 = not a candidate) taken in `order` while they fit the budget.

    A unit that would overshoot is skipped and later (shorter) ones still tried, as in BERT's whole-word
    masking script; if not even one unit fits, the first unit in `order` is taken so a row always has a
    prediction. Returns a bool per unit.
    """
    lengths = np.bincount(units[units >= 0], minlength=len(order))
    chosen = np.zeros(len(order), dtype=bool)
    covered = 0
    for u in order:
        if covered >= budget:
            break
        if covered + lengths[u] <= budget:
            chosen[u] = True
            covered += lengths[u]
    if covered == 0 and len(order):
        chosen[order[0]] = True
    return chosen


def mask_by_units(units: torch.Tensor, chosen: torch.Tensor, ids: torch.Tensor, generator: torch.Generator,
                  cfg: ObjectiveConfig, vocab_size: int, mask_token_id: int, n_special: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply 80/10/10 per unit to the chosen units. units (B, T) long (-1 = none), chosen (B, U) bool.

    All tokens of a unit share one draw: the whole unit becomes [MASK], or random tokens, or stays as it is.
    Returns (inputs, labels) with labels = original ids on the unit tokens and -100 elsewhere.
    """
    B, T = ids.shape
    U = chosen.shape[1]
    safe = units.clamp(min=0)
    picked = (units >= 0) & torch.gather(chosen, 1, safe) if U else torch.zeros_like(ids, dtype=torch.bool)
    labels = torch.where(picked, ids, torch.full_like(ids, IGNORE_INDEX))
    inputs = ids.clone()
    u = torch.rand(B, max(U, 1), generator=generator)  # one draw per unit
    u_tok = torch.gather(u, 1, safe)  # (B, T)
    to_mask = picked & (u_tok < cfg.mask_token_prob)
    to_random = picked & (u_tok >= cfg.mask_token_prob) & (u_tok < cfg.mask_token_prob + cfg.random_token_prob)
    inputs[to_mask] = mask_token_id
    n_rand = int(to_random.sum())
    if n_rand:
        inputs[to_random] = torch.randint(n_special, vocab_size, (n_rand,), generator=generator)
    return inputs, labels


def random_order(n: int, generator: torch.Generator) -> np.ndarray:
    return torch.randperm(n, generator=generator).numpy()


def mask_unit_rows(units: list[np.ndarray], ids: torch.Tensor, special_mask: torch.Tensor, generator: torch.Generator,
                   cfg: ObjectiveConfig, vocab_size: int, mask_token_id: int, n_special: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Units given per row (each (T,) with ids 0..U-1, -1 off-candidate): sample them in random order until
    the row's token budget, then 80/10/10 per unit. Used by whole-word and PMI masking."""
    budget = token_budget(special_mask, cfg.mask_rate)
    U = max((int(r.max()) + 1 for r in units), default=0)
    chosen = torch.zeros(len(units), U, dtype=torch.bool)
    for b, row in enumerate(units):
        n = int(row.max()) + 1 if row.size else 0
        if n:
            chosen[b, :n] = torch.from_numpy(choose_units(row, int(budget[b]), random_order(n, generator)))
    return mask_by_units(torch.from_numpy(np.stack(units)), chosen, ids, generator, cfg, vocab_size, mask_token_id, n_special)
