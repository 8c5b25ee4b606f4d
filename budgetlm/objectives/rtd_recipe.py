"""Pre-training with replaced-token detection (ELECTRA): the recipe, and its evaluation -- the generator's masked-LM figures and the discriminator's replaced-token accuracy on
held-out blocks, with masks and samples drawn from a fixed seed so that every evaluation sees the same draw."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tokenizers import Tokenizer

from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.data.batches import BlockDataset, special_mask
from budgetlm.objectives.mlm import mask_tokens
from budgetlm.objectives.recipe import ObjectiveRecipe, masking
from budgetlm.models import build_rtd_model
from budgetlm.objectives.rtd import rtd_loss
from budgetlm.tokenizer import MASK, SPECIAL_TOKENS

if TYPE_CHECKING:
    from budgetlm.stages.config import PretrainConfig


def rtd_recipe(cfg: PretrainConfig, tok: Tokenizer, valid_set: BlockDataset) -> ObjectiveRecipe:
    """ELECTRA: the model trained is the discriminator; `model.generator` (a smaller masked-LM encoder sharing
    its token embedding) lives beside it during training, so checkpoints and --resume hold both, and is
    dropped at the end: the saved model is the bare encoder (kind 'encoder'), ready for fine-tuning."""
    mask = masking(cfg, tok)
    obj = cfg.objective

    def loss(model, batch, g):
        ids = batch["ids"]
        inputs, labels = mask(ids, batch.get("word_starts"), g)
        step = rtd_loss(model, model.generator, inputs, labels, ids, ~special_mask(ids), g, obj.rtd_weight)
        return step.loss, step.scored, step.discriminator_correct, {
            "generator_accuracy": round(step.generator_correct / max(step.masked, 1), 4),
            "replaced_fraction": round(step.replaced / max(step.scored, 1), 4)}

    def final(m):
        del m.generator, m.heads["rtd"]
        return {}

    return ObjectiveRecipe("encoder", lambda: build_rtd_model(cfg.model, obj.generator_layers, obj.generator_d_ff),
                           loss, lambda m: rtd_eval(m, valid_set), "rtd_accuracy", final)


@torch.no_grad()
def rtd_eval(model, dataset: BlockDataset, max_blocks: int = 256, batch_size: int = 32, seed: int = 1234) -> dict:
    """On the first `max_blocks` blocks, standard 15% / 80-10-10 masking: generator MLM accuracy, discriminator
    accuracy over all (non-special) positions, and the fraction of them replaced (calling every token original
    scores 1 minus that fraction)."""
    g = torch.Generator().manual_seed(seed)
    cfg = ObjectiveConfig()
    n = min(max_blocks, len(dataset))
    totals = [0] * 5
    for start in range(0, n, batch_size):
        ids = dataset.batch(range(start, min(start + batch_size, n)))
        specials = special_mask(ids)
        inputs, labels = mask_tokens(ids, specials, g, cfg, model.cfg.vocab_size, MASK, len(SPECIAL_TOKENS))
        step = rtd_loss(model, model.generator, inputs, labels, ids, ~specials, g, 1.0)
        totals = [t + v for t, v in zip(totals, step[1:])]
    masked, gen_correct, scored, disc_correct, replaced = totals
    return {"generator_mlm_accuracy": gen_correct / max(masked, 1), "rtd_accuracy": disc_correct / max(scored, 1),
            "replaced_fraction": replaced / max(scored, 1)}
