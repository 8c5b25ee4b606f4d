"""Pre-training an encoder-decoder by denoising (T5 span corruption, BART text infilling): the recipe, and its
evaluation on held-out blocks noised from a fixed seed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tokenizers import Tokenizer

from budgetlm.data.batches import BlockDataset
from budgetlm.models import build_seq2seq_model
from budgetlm.objectives.recipe import ObjectiveRecipe
from budgetlm.objectives.seq2seq import DENOISERS, NoiseFn, seq2seq_loss

if TYPE_CHECKING:
    from budgetlm.stages.config import PretrainConfig


def denoising_recipe(cfg: PretrainConfig, tok: Tokenizer, valid_set: BlockDataset) -> ObjectiveRecipe:
    noise = DENOISERS[cfg.objective.name].bind(cfg.objective, tok)

    def loss(model, batch, g):
        return seq2seq_loss(model, *noise(batch["ids"], g))

    return ObjectiveRecipe("seq2seq", lambda: build_seq2seq_model(cfg.model), loss,
                           lambda m: denoising_eval(m, valid_set, noise), "denoising_accuracy")


@torch.no_grad()
def denoising_eval(model, dataset: BlockDataset, noise: NoiseFn, max_blocks: int = 256, batch_size: int = 32,
                   seed: int = 1234) -> dict:
    """Loss and next-token accuracy on the first `max_blocks` blocks, noised with a fixed seed so every
    evaluation (and every model) is scored on the same corrupted inputs."""
    g = torch.Generator().manual_seed(seed)
    n = min(max_blocks, len(dataset))
    total_loss, total_n, total_correct = 0.0, 0, 0
    for start in range(0, n, batch_size):
        inputs, labels = noise(dataset.batch(range(start, min(start + batch_size, n))), g)
        loss, count, correct = seq2seq_loss(model, inputs, labels)
        total_loss += float(loss) * count
        total_n += count
        total_correct += correct
    return {"denoising_loss": total_loss / total_n, "denoising_accuracy": total_correct / total_n, "denoising_predictions": total_n}
