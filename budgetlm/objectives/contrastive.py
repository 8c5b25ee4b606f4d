"""Sentence-embedding objectives: pure functions of embeddings (and scores), returning a scalar loss.

They know nothing of the model or the batches; tasks/embedding.py pools the encoder's hidden states into
the (B, D) embeddings these take. Every similarity here is a cosine: inputs are L2-normalised first.

- `info_nce`: in-batch negatives with a temperature (SimCLR / SimCSE, Gao et al. 2021), optionally in both
  directions and with an additive margin on the positive pair (AM-softmax as in LaBSE, Feng et al. 2022).
- `cosent`: ranks pairs by their gold similarity score (CoSENT, Su 2022); works on STS-style scored pairs.
- `cosine_mse`: regression of the cosine to a score in [0, 1] (Sentence-BERT's CosineSimilarityLoss).
- `distill_mse` / `similarity_matching`: match a teacher's embeddings (Reimers & Gurevych 2020) or, when the
  dimensions differ, the teacher's in-batch cosine-similarity matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, D), (N, D) -> (B, N) cosine similarities."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.05, margin: float = 0.0,
             bidirectional: bool = True) -> torch.Tensor:
    """a[i] and b[i] are a positive pair; every b[j], j != i, is a negative for a[i] (and vice versa).

    logits[i, j] = (cos(a_i, b_j) - margin * [i == j]) / temperature; loss = cross-entropy with target i.
    The margin makes the positive harder to pick, so the model must separate it by at least `margin`.
    Bidirectional averages the a->b and b->a losses (LaBSE's "bidirectional dual encoder").
    """
    sim = cosine_matrix(a, b)  # (B, B)
    if margin:
        sim = sim - margin * torch.eye(sim.shape[0], dtype=sim.dtype, device=sim.device)
    logits = sim / temperature
    target = torch.arange(sim.shape[0], device=sim.device)
    loss = F.cross_entropy(logits, target)
    if bidirectional:
        loss = (loss + F.cross_entropy(logits.T, target)) / 2
    return loss


def cosent(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """log(1 + sum over pairs (i, j) with score_i > score_j of exp(scale * (cos_j - cos_i))).

    Only the order of the cosines matters, which is what a Spearman evaluation measures.
    """
    cos = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1) * scale  # (B,)
    diff = cos[None, :] - cos[:, None]  # (B, B): diff[i, j] = cos_j - cos_i
    wrong_order = scores[:, None] > scores[None, :]  # pairs where i should be more similar than j
    diff = diff.masked_fill(~wrong_order, float("-inf"))
    zero = diff.new_zeros(1)  # the "1 +" inside the log
    return torch.logsumexp(torch.cat([zero, diff.flatten()]), dim=0)


def cosine_mse(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Mean squared error between cos(a_i, b_i) and scores_i (scores scaled to [0, 1])."""
    cos = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)
    return F.mse_loss(cos, scores)


def distill_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between L2-normalised student and teacher embeddings (same dimension), scaled so that
    orthogonal unit vectors cost 1 whatever the dimension."""
    s, t = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
    return ((s - t) ** 2).sum(-1).mean() / 2


def similarity_matching(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between the student's and the teacher's in-batch cosine matrices; works across dimensions."""
    return F.mse_loss(cosine_matrix(student, student), cosine_matrix(teacher, teacher))


DISTILL_LOSSES = {"mse": distill_mse, "similarity": similarity_matching}
REGRESSION_LOSSES = {"cosent": cosent, "mse": cosine_mse}
