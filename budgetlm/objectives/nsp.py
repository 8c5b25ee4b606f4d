"""Sentence-pair objectives as an optional second head: next-sentence prediction (BERT, Devlin et al. 2019) and
sentence-order prediction (ALBERT, Lan et al. 2020). The default stays RoBERTa-style packed blocks without one.

A packed block [CLS] t1 t2 ... becomes [CLS] A [SEP] B [SEP] with segment ids 0 for "[CLS] A [SEP]" and 1 for
"B [SEP]"; A and B are the two halves (L tokens each) of the block's text:
  nsp: label 1 (is next): B follows A;  label 0: B is the second half of another block of the batch (the
       batch is a random sample of the corpus, so that is a random segment), each with probability 1/2;
  sop: label 0: A then B, in order;  label 1: B then A (swapped), each with probability 1/2.
Segments are fixed-length token windows, not sentences, and may cross a document end ([SEP] inside a
segment); the masking functions never choose that [SEP]. Masking is applied to the pairs afterwards.
"""

from __future__ import annotations

import torch

from budgetlm.tokenizer import CLS, SEP


def make_sentence_pairs(
    ids: torch.Tensor,  # (B, T) packed blocks starting with [CLS]
    task: str,  # "nsp" or "sop"
    generator: torch.Generator,
    word_starts: torch.Tensor | None = None,  # (B, T) bool, rearranged like ids if given
) -> dict:
    """{'ids', 'token_type_ids', 'word_starts' (or None): (B, 2L+3); 'pair_labels': (B,)} with L = (T-3)//2."""
    if task not in ("nsp", "sop"):
        raise ValueError(f"unknown sentence task {task!r}")
    B, T = ids.shape
    L = (T - 3) // 2
    if L < 1 or (task == "nsp" and B < 2):
        raise ValueError("sentence pairs need blocks of at least 5 tokens (and a batch of >= 2 for nsp)")
    first, second = slice(1, 1 + L), slice(1 + L, 1 + 2 * L)
    flip = torch.rand(B, generator=generator) < 0.5  # (B,)
    other = torch.roll(torch.arange(B), -1)  # "random" second segment: the next row of the shuffled batch

    def arrange(x: torch.Tensor, cls_value, sep_value) -> torch.Tensor:
        a, b = x[:, first], x[:, second]
        if task == "nsp":
            b = torch.where(flip[:, None], b[other], b)
        else:
            a, b = torch.where(flip[:, None], b, a), torch.where(flip[:, None], a, b)
        col = lambda v: torch.full((B, 1), v, dtype=x.dtype)  # noqa: E731
        return torch.cat([col(cls_value), a, col(sep_value), b, col(sep_value)], dim=1)

    out = {
        "ids": arrange(ids, CLS, SEP),
        "word_starts": arrange(word_starts, True, True) if word_starts is not None else None,
        "token_type_ids": torch.cat([torch.zeros(B, L + 2, dtype=torch.long), torch.ones(B, L + 1, dtype=torch.long)], 1),
        # nsp: 1 = B is the true next segment; sop: 1 = swapped
        "pair_labels": (~flip).long() if task == "nsp" else flip.long(),
    }
    if out["word_starts"] is not None:
        out["word_starts"][:, 1] = True  # each segment starts a word
        out["word_starts"][:, L + 2] = True
    return out


def pair_loss(model, hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cross-entropy of the 'pair' head on [CLS]; returns (loss, number correct)."""
    logits = model.heads["pair"](hidden, None)  # (B, 2)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    return loss, int((logits.detach().argmax(-1) == labels).sum())
