"""ELECTRA replaced-token detection (Clark et al. 2020): a small generator fills the masked positions with
sampled tokens; the encoder being trained (the discriminator) tells, at every position, whether its token is
the original. Every position carries a label, where masked LM has one at ~15-25% of them.

`replace_tokens` is a pure function from (ids, masked labels, generator logits) to (inputs, labels) for the
discriminator. `rtd_loss` combines the generator's masked-LM loss with the discriminator's loss, weighted as in
the paper (generator + 50 x discriminator). The generator is an encoder of its own (fewer layers) sharing the
token embedding with the discriminator (models/kinds.py `build_rtd_model`); only the discriminator is kept after
pre-training. Pure losses: nothing here builds a model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from budgetlm.objectives.mlm import IGNORE_INDEX, count_correct, masked_logits


def replace_tokens(
    ids: torch.Tensor,  # (B, T) original ids
    labels: torch.Tensor,  # (B, T) masked-LM labels: the original id at masked positions, -100 elsewhere
    logits: torch.Tensor,  # (N, V) the generator's logits at the N masked positions, in row-major order
    generator: torch.Generator,
    candidates: torch.Tensor,  # (B, T) bool: positions the discriminator is scored on (non-special tokens)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (inputs, labels) for the discriminator: masked positions hold a token sampled from the
    generator (temperature 1); labels are 1.0 where the token differs from the original, 0.0 where it is the
    original (a sample that equals the original counts as original, as in ELECTRA) and -100 off `candidates`."""
    masked = labels != IGNORE_INDEX
    probs = torch.softmax(logits.detach().float(), dim=-1)
    sampled = torch.multinomial(probs, 1, generator=generator).squeeze(1) if len(probs) else ids[masked]
    inputs = ids.clone()
    inputs[masked] = sampled
    replaced = (inputs != ids).float()
    return inputs, torch.where(candidates, replaced, torch.full_like(replaced, IGNORE_INDEX))


def discriminator_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Binary cross-entropy over the scored positions: (mean loss, positions, correct)."""
    scored = labels != IGNORE_INDEX
    target = labels[scored]
    z = logits[scored]
    loss = F.binary_cross_entropy_with_logits(z, target)
    correct = int(((z.detach() > 0).float() == target).sum())
    return loss, int(target.numel()), correct


class RtdStep(NamedTuple):
    loss: torch.Tensor  # generator MLM loss + weight * discriminator loss
    masked: int  # positions the generator predicted
    generator_correct: int
    scored: int  # positions the discriminator was scored on
    discriminator_correct: int
    replaced: int  # scored positions whose token differs from the original


def rtd_loss(model, generator_model, inputs: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor,
             candidates: torch.Tensor, g: torch.Generator, weight: float) -> RtdStep:
    """One ELECTRA step on a batch already masked for the generator (`inputs`, `labels` from a masking
    function): the generator predicts the masked tokens, samples replace them, the discriminator classifies."""
    gen_logits, targets = masked_logits(generator_model, generator_model.encoder(inputs), labels)  # (N, V), (N,)
    gen_loss = F.cross_entropy(gen_logits, targets)
    gen_correct = int(count_correct(gen_logits.detach(), targets))
    disc_inputs, disc_labels = replace_tokens(ids, labels, gen_logits, g, candidates)
    disc_logits = model.heads["rtd"](model.encoder(disc_inputs))  # (B, T)
    disc_loss, n_scored, disc_correct = discriminator_loss(disc_logits, disc_labels)
    return RtdStep(gen_loss + weight * disc_loss, int(targets.numel()), gen_correct, n_scored, disc_correct,
                   int((disc_labels == 1.0).sum()))
