"""ELECTRA evaluation: the generator's masked-LM figures and the discriminator's replaced-token accuracy on
held-out blocks, with masks and samples drawn from a fixed seed so that every evaluation sees the same draw."""

from __future__ import annotations

import torch

from budgetlm.config import ObjectiveConfig
from budgetlm.data.batches import BlockDataset, special_mask
from budgetlm.objectives.mlm import mask_tokens
from budgetlm.objectives.rtd import rtd_loss
from budgetlm.tokenizer import MASK, SPECIAL_TOKENS


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
