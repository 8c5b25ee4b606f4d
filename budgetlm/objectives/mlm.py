"""BERT masked-LM token masking (Devlin et al. 2019), applied afresh on every draw (RoBERTa dynamic masking).

Exactly round(rate * n_candidates) positions are chosen per sequence (not a Bernoulli draw per token), so the
number of predictions per batch -- and hence the sparse head's cost -- is stable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # annotations only: objectives/config.py reads the package's MASKING_FUNCTIONS
    from budgetlm.objectives.config import ObjectiveConfig

from budgetlm.data.batches import IGNORE_INDEX


def mask_tokens(
    ids: torch.Tensor,  # (B, T) long
    special_mask: torch.Tensor,  # (B, T) bool: True where a token must never be chosen ([CLS], [SEP], [PAD], ...)
    generator: torch.Generator,
    cfg: ObjectiveConfig,
    vocab_size: int,
    mask_token_id: int,
    n_special: int = 0,  # random replacements are drawn from [n_special, vocab_size)
    word_starts: torch.Tensor | None = None,  # unused: random-token masking ignores word boundaries
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (inputs, labels): labels hold the original id at chosen positions and -100 elsewhere."""
    B, T = ids.shape
    candidates = ~special_mask
    n_cand = candidates.sum(1)  # (B,)
    n_pick = torch.round(n_cand.to(torch.float64) * cfg.mask_rate).long().clamp(min=1)
    n_pick = torch.minimum(n_pick, n_cand)
    # rank candidates by a random key; pick the n_pick smallest per row
    keys = torch.rand(B, T, generator=generator)
    keys = keys.masked_fill(~candidates, 2.0)
    ranks = keys.argsort(dim=1).argsort(dim=1)
    chosen = ranks < n_pick.unsqueeze(1)

    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    inputs = ids.clone()
    u = torch.rand(B, T, generator=generator)
    to_mask = chosen & (u < cfg.mask_token_prob)
    to_random = chosen & (u >= cfg.mask_token_prob) & (u < cfg.mask_token_prob + cfg.random_token_prob)
    inputs[to_mask] = mask_token_id
    n_rand = int(to_random.sum())
    if n_rand:
        inputs[to_random] = torch.randint(n_special, vocab_size, (n_rand,), generator=generator)
    return inputs, labels


def mlm_loss(model, inputs: torch.Tensor, labels: torch.Tensor, token_type_ids=None, attention_mask=None,
             head_loss: Callable | None = None):
    """Sparse-prediction MLM loss: the head and vocabulary projection run on labelled positions only.

    Returns (mean loss, number of predictions, number correct). `head_loss` replaces `vocabulary_loss` (training
    passes its compiled copy under train.compile).
    """
    hidden = model.encoder(inputs, token_type_ids, attention_mask)  # (B, T, D)
    return mlm_loss_on_hidden(model, hidden, labels, head_loss)


def masked_logits(model, hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The MLM head on the labelled positions only: (logits (N, V), targets (N,)), in row-major order."""
    selected = labels != IGNORE_INDEX  # (B, T)
    return model.heads["mlm"](hidden[selected]), labels[selected]


def count_correct(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How many rows of (N, V) logits have their maximum at the target: argmax's count unless a row ties exactly,
    at ~1/10 of its cost on CPU (a max reduction instead of an index search over V)."""
    return (logits.gather(1, targets[:, None]).squeeze(1) >= logits.amax(-1)).sum()


def prediction_loss(logits: torch.Tensor, targets: torch.Tensor):
    """Cross-entropy of (N, V) logits in fp32 against (N,) targets: (loss, number correct)."""
    logits = logits.float()
    return F.cross_entropy(logits, targets), count_correct(logits.detach(), targets)


def vocabulary_loss(head, hidden: torch.Tensor, targets: torch.Tensor):
    """The (tied) MLM head on the selected positions (N, D) and `prediction_loss` on its logits.

    One function, so that training can compile the two together (train.compile): fused, the (N, V) logits'
    cast, log-softmax and their backward cost ~1/3 of the eager ops under bf16 (docs/benchmarks.md).
    """
    return prediction_loss(head(hidden), targets)


def mlm_loss_on_hidden(model, hidden: torch.Tensor, labels: torch.Tensor, head_loss: Callable | None = None):
    """mlm_loss given the encoder's output (B, T, D), for objectives that add a second head on the same pass."""
    selected = labels != IGNORE_INDEX  # (B, T)
    targets = labels[selected]
    loss, correct = (head_loss or vocabulary_loss)(model.heads["mlm"], hidden[selected], targets)
    return loss, targets.numel(), int(correct)
