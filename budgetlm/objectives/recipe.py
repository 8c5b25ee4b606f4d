"""What pre-training with one objective needs beyond the shared data pipeline, loop and stage skeleton.

Each objective's builder `(cfg, tokenizer, validation blocks) -> ObjectiveRecipe` lives beside the objective
(mlm_recipe.py, rtd_recipe.py, clm_recipe.py, denoising_recipe.py); stages/pretrain.py's `RECIPES` maps
`objective.name` to it, so a new objective is one file plus one table entry.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch
from tokenizers import Tokenizer

from budgetlm.data.batches import special_mask
from budgetlm.objectives import MASKING_FUNCTIONS
from budgetlm.objectives.pmi import PmiNgrams
from budgetlm.tokenizer import MASK, SPECIAL_TOKENS

if TYPE_CHECKING:
    from budgetlm.stages.config import PretrainConfig


def _nothing(model: torch.nn.Module) -> dict:
    return {}


@dataclass
class ObjectiveRecipe:
    """The model an objective trains, the loss of a block batch, its evaluation and what kind of model it saves."""

    kind: str  # saved in the model's config.json
    build: Callable[[], torch.nn.Module]  # run under torch.manual_seed(train.seed)
    # (model, batch, g) -> (loss, n, correct) or (loss, n, correct, {extra metric: value})
    loss: Callable[[torch.nn.Module, dict, torch.Generator], tuple]
    evaluate: Callable[[torch.nn.Module], dict]
    accuracy_key: str  # name of the training-batch accuracy in metrics.jsonl
    final: Callable[[torch.nn.Module], dict] = field(default=_nothing)  # extra figures once training is over


def masking(cfg: PretrainConfig, tok: Tokenizer) -> Callable:
    """(ids, word_starts, g) -> (inputs, labels) with the configured masking; word_starts (B, T) or None."""
    mask_fn = MASKING_FUNCTIONS[cfg.objective.masking]
    if cfg.objective.masking == "pmi":  # the one masking with an input of its own: bind its n-gram tables
        ngrams = PmiNgrams.from_file(cfg.objective.pmi_vocab, tok)
        print(f"PMI vocabulary: {ngrams.size:,} n-grams ({ngrams.skipped:,} unusable with this tokenizer)", file=sys.stderr)
        mask_fn = functools.partial(mask_fn, ngrams=ngrams)

    def mask(ids, word_starts, g):
        return mask_fn(ids, special_mask(ids), g, cfg.objective, cfg.model.vocab_size, MASK, len(SPECIAL_TOKENS),
                       word_starts=word_starts)
    return mask
