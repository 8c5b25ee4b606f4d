"""Pre-training with masked-LM (BERT/RoBERTa, optionally with NSP/SOP): the recipe, and its evaluation --
loss/accuracy under random masking, and pseudo-perplexity (Salazar et al. 2020)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from tokenizers import Tokenizer

from budgetlm.data.batches import BlockDataset, special_mask
from budgetlm.models import SequenceClassificationHead, build_mlm_model
from budgetlm.models.config import HeadConfig
from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.mlm import IGNORE_INDEX, mask_tokens, mlm_loss, mlm_loss_on_hidden, vocabulary_loss
from budgetlm.objectives.nsp import make_sentence_pairs, pair_loss
from budgetlm.objectives.recipe import ObjectiveRecipe, masking
from budgetlm.tokenizer import MASK, SPECIAL_TOKENS
from budgetlm.train.compile import compile_fn

if TYPE_CHECKING:
    from budgetlm.stages.config import PretrainConfig


def mlm_recipe(cfg: PretrainConfig, tok: Tokenizer, valid_set: BlockDataset) -> ObjectiveRecipe:
    mask = masking(cfg, tok)
    task = cfg.objective.sentence_task

    def build():
        model = build_mlm_model(cfg.model)
        if task != "none":  # NSP / SOP: a second head on [CLS], trained alongside MLM (objectives/nsp.py)
            model.heads["pair"] = SequenceClassificationHead(cfg.model, HeadConfig(), 2)
        return model

    head_loss = compile_fn(vocabulary_loss, cpu_clock=cfg.train.clock == "cpu") if cfg.train.compile else None

    def loss(model, batch, g):
        if task == "none":  # RoBERTa-style packed blocks
            return mlm_loss(model, *mask(batch["ids"], batch.get("word_starts"), g), head_loss=head_loss)
        pairs = make_sentence_pairs(batch["ids"], task, g, batch.get("word_starts"))  # [CLS] A [SEP] B [SEP]
        inputs, labels = mask(pairs["ids"], pairs["word_starts"], g)
        hidden = model.encoder(inputs, pairs["token_type_ids"])  # (B, 2L+3, D)
        mlm, n, correct = mlm_loss_on_hidden(model, hidden, labels, head_loss)
        pair, pair_correct = pair_loss(model, hidden, pairs["pair_labels"])
        return mlm + pair, n, correct, {f"{task}_accuracy": round(pair_correct / len(pairs["pair_labels"]), 4)}

    def final(m):
        if "pair" in m.heads:  # the saved model is a plain MLM model, like every other pre-training run
            del m.heads["pair"]
        return pseudo_perplexity(m, valid_set)

    return ObjectiveRecipe("mlm", build, loss, lambda m: mlm_eval(m, valid_set), "mlm_accuracy", final)


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
            logits = model.heads["mlm"](hidden[rows, pos])  # (P, V)
            logp = torch.log_softmax(logits.float(), -1)[rows, block[pos]]
            total_logp += float(logp.sum())
            scored += len(pos)
    return {"pseudo_perplexity": math.exp(-total_logp / max(scored, 1)), "pppl_tokens": scored}
