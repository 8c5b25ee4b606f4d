"""Masked-LM evaluation: loss/accuracy under random masking, and pseudo-perplexity (Salazar et al. 2020)."""

from __future__ import annotations

import math

import torch

from budgetlm.config import ObjectiveConfig
from budgetlm.data.batches import BlockDataset, special_mask
from budgetlm.objectives.mlm import IGNORE_INDEX, mask_tokens, mlm_loss
from budgetlm.tokenizer import MASK, SPECIAL_TOKENS


@torch.no_grad()
def mlm_eval(model, dataset: BlockDataset, max_blocks: int = 256, batch_size: int = 32, seed: int = 1234) -> dict:
    """MLM loss and top-1 accuracy on the first `max_blocks` blocks, with standard 15% / 80-10-10 masking
    drawn from a fixed seed, so every model is scored on the same masked positions."""
    g = torch.Generator().manual_seed(seed)
    cfg = ObjectiveConfig()
    vocab = model.cfg.vocab_size
    n = min(max_blocks, len(dataset))
    total_loss, total_n, total_correct = 0.0, 0, 0
    for start in range(0, n, batch_size):
        ids = dataset.batch(range(start, min(start + batch_size, n)))
        inputs, labels = mask_tokens(ids, special_mask(ids), g, cfg, vocab, MASK, len(SPECIAL_TOKENS))
        loss, count, correct = mlm_loss(model, inputs, labels)
        total_loss += float(loss) * count
        total_n += count
        total_correct += correct
    return {"mlm_loss": total_loss / total_n, "mlm_accuracy": total_correct / total_n, "mlm_predictions": total_n}


@torch.no_grad()
def pseudo_perplexity(model, dataset: BlockDataset, max_tokens: int = 2048, batch_size: int = 64) -> dict:
    """exp(-mean log p(w_t | w_{-t})): every scored token is masked alone, one copy of its block per token.

    Exact but costly (one forward pass of a block per scored token), so it is computed on the first
    `max_tokens` non-special tokens of the evaluation text; the count is reported with the figure.
    """
    total_logp, scored = 0.0, 0
    block_i = 0
    while scored < max_tokens and block_i < len(dataset):
        block = torch.from_numpy(dataset.block(block_i))  # (T,)
        block_i += 1
        positions = (~special_mask(block)).nonzero().flatten()[: max_tokens - scored]
        for start in range(0, len(positions), batch_size):
            pos = positions[start:start + batch_size]  # (P,)
            inputs = block.repeat(len(pos), 1)  # (P, T)
            labels = torch.full_like(inputs, IGNORE_INDEX)
            rows = torch.arange(len(pos))
            labels[rows, pos] = block[pos]
            inputs[rows, pos] = MASK
            hidden = model.encoder(inputs)
            logits = model.heads["mlm"](hidden[rows, pos], model.encoder.tok_emb.weight)  # (P, V)
            logp = torch.log_softmax(logits.float(), -1)[rows, block[pos]]
            total_logp += float(logp.sum())
            scored += len(pos)
    return {"pseudo_perplexity": math.exp(-total_logp / max(scored, 1)), "pppl_tokens": scored}
