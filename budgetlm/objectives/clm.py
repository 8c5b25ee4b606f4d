"""Causal (next-token) language modelling on packed blocks, as GPT: pure functions of the token ids.

A block holds T + 1 tokens of the packed stream `doc1 [SEP] doc2 [SEP] ...`; [SEP] is the end-of-text
token. Inputs are its first T tokens, labels the last T (each position predicts the next token).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from budgetlm.objectives.mlm import IGNORE_INDEX
from budgetlm.tokenizer import PAD, SEP

END_OF_TEXT = SEP


def next_token_targets(ids: torch.Tensor, pad_id: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T + 1) ids -> inputs (B, T), labels (B, T): labels[t] = ids[t + 1]; padding targets are -100."""
    inputs, labels = ids[:, :-1], ids[:, 1:].clone()
    labels[labels == pad_id] = IGNORE_INDEX
    return inputs, labels


def document_ids(inputs: torch.Tensor, end_of_text: int = END_OF_TEXT) -> torch.Tensor:
    """(B, T) -> (B, T) index of the document each position belongs to, for a block-diagonal causal mask.

    An end-of-text token opens the next document (as GPT-2's <|endoftext|> doubles as its BOS): the last
    token of a document predicts [SEP] from its own document, and [SEP] predicts the next document's first
    token from nothing earlier, so no prediction ever sees the previous document.
    """
    return torch.cumsum((inputs == end_of_text).long(), dim=1)


def lm_logits(model, inputs: torch.Tensor, segment_ids: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T) -> (B, T, V) next-token logits of a decoder model."""
    hidden = model.decoder(inputs, segment_ids)  # (B, T, D)
    return model.heads["lm"](hidden)  # (B, T, V)


def clm_loss(model, inputs: torch.Tensor, labels: torch.Tensor, segment_ids: torch.Tensor | None = None):
    """Mean next-token cross-entropy over labelled positions; returns (loss, number of predictions, number
    correct), as mlm_loss does."""
    logits = lm_logits(model, inputs, segment_ids)  # (B, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    labelled = labels != IGNORE_INDEX
    correct = (logits.detach().argmax(-1) == labels) & labelled
    return loss, int(labelled.sum()), int(correct.sum())
