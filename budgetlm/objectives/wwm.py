"""Whole-word masking (BERT's 2019 update; Cui et al. 2019) for any tokenizer.

Words come from the word starts stored in the token cache (the fast tokenizer's word ids), not from the
WordPiece `##` prefix, so byte-level BPE (`Ġ`) and Unigram (`▁`) vocabularies get whole words too. Words are
taken in random order until the token budget (round(rate * candidates)) is met; a word whose tokens would
overshoot it is skipped. 80/10/10 applies per word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from budgetlm.objectives.units import mask_unit_rows, word_index

if TYPE_CHECKING:  # annotations only: objectives/config.py reads the package's MASKING_FUNCTIONS
    from budgetlm.objectives.config import ObjectiveConfig


def mask_whole_words(
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
        raise ValueError("whole-word masking needs word_starts (build the token cache with word_starts=True)")
    words = word_index(word_starts, special_mask).numpy()  # (B, T)
    return mask_unit_rows(list(words), ids, special_mask, generator, cfg, vocab_size, mask_token_id, n_special)
