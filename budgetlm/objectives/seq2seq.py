"""Encoder-decoder training glue: teacher-forced loss (pre-training and text-to-text fine-tuning), and the
denoising objectives wired to a tokenizer (their recipe and evaluation: denoising_recipe.py).

The objectives themselves are pure functions in objectives/span.py and objectives/infill.py; `DENOISERS`
binds each (by `objective.name`) to the token ids it needs and says which tokens it adds to the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from budgetlm.data.batches import special_mask
from budgetlm.generate.seq2seq import DECODER_START, EOS
from budgetlm.objectives import IGNORE_INDEX, corrupt_spans, infill, sentinel_tokens
from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.tokenizer import MASK, PAD

SENTENCE_ENDS = (".", "!", "?")

NoiseFn = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]  # ids -> (inputs, labels)


def shift_right(labels: torch.Tensor) -> torch.Tensor:
    """Decoder inputs for teacher forcing: DECODER_START, then the labels shifted by one (-100 read as PAD)."""
    dec = labels.new_full(labels.shape, PAD)
    dec[:, 0] = DECODER_START
    dec[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == IGNORE_INDEX, PAD)
    return dec


def seq2seq_loss(model, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Mean cross-entropy over labelled decoder positions (the vocabulary projection runs on those only).

    inputs: (B, S) right-padded with PAD; labels: (B, L) with -100 where nothing is predicted.
    Returns (loss, number of predictions, number correct).
    """
    attention_mask = (inputs != PAD).long()
    memory = model.encode(inputs, attention_mask)  # (B, S, D)
    hidden = model.decode(shift_right(labels), memory, attention_mask)  # (B, L, D)
    selected = labels != IGNORE_INDEX
    targets = labels[selected]  # (N,)
    logits = model.logits(hidden[selected])  # (N, V)
    loss = F.cross_entropy(logits, targets)
    return loss, targets.numel(), int((logits.detach().argmax(-1) == targets).sum())


@dataclass(frozen=True)
class Denoiser:
    added_tokens: Callable[[ObjectiveConfig], list[str]]  # special tokens the objective adds to the tokenizer
    bind: Callable[[ObjectiveConfig, Tokenizer], NoiseFn]


def _bind_span(cfg: ObjectiveConfig, tok: Tokenizer) -> NoiseFn:
    sentinels = [tok.token_to_id(s) for s in sentinel_tokens(cfg.sentinels)]
    if None in sentinels:
        raise ValueError("the tokenizer lacks the sentinel tokens; add them with add_tokens()")
    return lambda ids, g: corrupt_spans(ids, special_mask(ids), g, cfg, sentinels, EOS, PAD)


def _bind_infill(cfg: ObjectiveConfig, tok: Tokenizer) -> NoiseFn:
    ends = {i for i in (tok.token_to_id(t) for t in SENTENCE_ENDS) if i is not None}
    return lambda ids, g: infill(ids, special_mask(ids), g, cfg, MASK, PAD, ends)


DENOISERS: dict[str, Denoiser] = {
    "span_corruption": Denoiser(lambda cfg: sentinel_tokens(cfg.sentinels), _bind_span),
    "text_infilling": Denoiser(lambda cfg: [], _bind_infill),
}


def add_tokens(tok: Tokenizer, cfg: ObjectiveConfig) -> int:
    """Add the objective's special tokens (e.g. T5 sentinels) to `tok` in place; returns how many were new."""
    return tok.add_special_tokens(DENOISERS[cfg.name].added_tokens(cfg))
