"""Contrastive, regression and distillation losses against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from budgetlm.objectives.contrastive import cosent, cosine_mse, distill_mse, info_nce, similarity_matching

# unit vectors with known cosines: cos(a0, b0) = 1, cos(a0, b1) = 0, cos(a1, b0) = 0.6, cos(a1, b1) = 0.8
A = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
B = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def _ce(logits_row: list[float], target: int) -> float:
    return -logits_row[target] + math.log(sum(math.exp(x) for x in logits_row))


def test_info_nce_equals_hand_arithmetic():
    t = 0.5
    a_to_b = (_ce([1 / t, 0 / t], 0) + _ce([0.6 / t, 0.8 / t], 1)) / 2
    b_to_a = (_ce([1 / t, 0.6 / t], 0) + _ce([0 / t, 0.8 / t], 1)) / 2
    assert info_nce(A, B, temperature=t, bidirectional=False).item() == pytest.approx(a_to_b, rel=1e-5)
    assert info_nce(A, B, temperature=t, bidirectional=True).item() == pytest.approx((a_to_b + b_to_a) / 2, rel=1e-5)


def test_info_nce_ignores_vector_length():
    assert info_nce(A * 3, B * 0.1).item() == pytest.approx(info_nce(A, B).item(), rel=1e-5)


def test_bidirectional_info_nce_is_symmetric():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    assert info_nce(a, b).item() == pytest.approx(info_nce(b, a).item(), rel=1e-6)
    assert info_nce(a, b, bidirectional=False).item() != pytest.approx(info_nce(b, a, bidirectional=False).item(), rel=1e-3)


def test_margin_lowers_the_positive_logit():
    t, m = 0.5, 0.3
    hand = (_ce([(1 - m) / t, 0 / t], 0) + _ce([0.6 / t, (0.8 - m) / t], 1)) / 2
    assert info_nce(A, B, temperature=t, margin=m, bidirectional=False).item() == pytest.approx(hand, rel=1e-5)
    assert info_nce(A, B, temperature=t, margin=m).item() > info_nce(A, B, temperature=t).item()


def test_temperature_sharpens():
    # positives are the most similar in every row, so a lower temperature gives a lower loss
    a = torch.eye(3) + 0.1
    losses = [info_nce(a, a.clone(), temperature=t).item() for t in (1.0, 0.1, 0.01)]
    assert losses[0] > losses[1] > losses[2] >= 0
    assert losses[0] == pytest.approx(info_nce(a / 10, a, temperature=1.0).item(), rel=1e-5)


def test_cosent_hand_arithmetic_and_order():
    # pair 0 has cosine 1, pair 1 has cosine 0.8; gold says pair 1 is more similar: one wrongly ordered pair
    a, b = A, torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scale = 20.0
    wrong = cosent(a, b, torch.tensor([0.2, 0.9]), scale)
    assert wrong.item() == pytest.approx(math.log(1 + math.exp(scale * (1.0 - 0.8))), rel=1e-5)
    right = cosent(a, b, torch.tensor([0.9, 0.2]), scale)
    assert right.item() == pytest.approx(math.log(1 + math.exp(scale * (0.8 - 1.0))), rel=1e-5)
    assert cosent(a, b, torch.tensor([0.5, 0.5])).item() == pytest.approx(0.0, abs=1e-6)  # ties carry no order


def test_cosine_mse():
    assert cosine_mse(A, B, torch.tensor([1.0, 0.8])).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_mse(A, B, torch.tensor([0.0, 0.8])).item() == pytest.approx(0.5, rel=1e-5)


def test_distillation_losses():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(5, 8, generator=g)
    assert distill_mse(t * 2, t).item() == pytest.approx(0.0, abs=1e-6)
    assert distill_mse(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])).item() == pytest.approx(1.0)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    rotated = t @ q  # same cosines, different coordinates
    assert similarity_matching(rotated, t).item() == pytest.approx(0.0, abs=1e-6)
    assert similarity_matching(torch.randn(5, 3, generator=g), t).item() > 0.01  # works across dimensions
