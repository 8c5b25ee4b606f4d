"""Pre-training with next-token prediction (a decoder): the recipe, and its evaluation -- next-token loss and
perplexity on held-out blocks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from budgetlm.data.batches import BlockDataset
from budgetlm.models import build_lm_model
from budgetlm.objectives.clm import IGNORE_INDEX, clm_loss, document_ids, lm_logits, next_token_targets
from budgetlm.objectives.recipe import ObjectiveRecipe

if TYPE_CHECKING:
    from budgetlm.stages.config import PretrainConfig


def next_token_recipe(cfg: PretrainConfig, tok: Tokenizer, valid_set: BlockDataset) -> ObjectiveRecipe:
    document_mask = cfg.objective.document_mask

    def loss(model, batch, g):
        inputs, labels = next_token_targets(batch["ids"])  # (B, T) each from (B, T + 1)
        return clm_loss(model, inputs, labels, document_ids(inputs) if document_mask else None)

    return ObjectiveRecipe("clm", lambda: build_lm_model(cfg.model), loss,
                           lambda m: lm_eval(m, valid_set, document_mask=document_mask), "next_token_accuracy")


@torch.no_grad()
def lm_eval(model, dataset: BlockDataset, max_tokens: int = 1 << 17, batch_size: int = 32, document_mask: bool = False) -> dict:
    """Mean next-token loss (nats) and perplexity over the first blocks of `dataset`, up to `max_tokens`
    predicted tokens (every block when the set is smaller). Each token is predicted once, from the context
    inside its block (no sliding window), so figures depend on max_seq_len as nanoGPT's do."""
    per_block = dataset.block_len - 1
    n = min(len(dataset), max(1, max_tokens // per_block))
    total_loss, total_n = 0.0, 0
    for start in range(0, n, batch_size):
        ids = dataset.batch(range(start, min(start + batch_size, n)))  # (B, T + 1)
        inputs, labels = next_token_targets(ids)
        segments = document_ids(inputs) if document_mask else None
        logits = lm_logits(model, inputs, segments)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
        total_loss += float(loss)
        total_n += int((labels != IGNORE_INDEX).sum())
    mean = total_loss / max(total_n, 1)
    return {"lm_loss": mean, "perplexity": math.exp(min(mean, 50.0)), "lm_tokens": total_n}
