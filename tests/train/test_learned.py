"""The verdict on whether a run learnt anything (train/learned.py), on hand-made loss curves."""

from __future__ import annotations

import math
import random

from budgetlm.train.learned import FEW_STEPS, MIN_LOGGED, advice, judge


def noisy(values, spread=0.01, seed=0):
    rng = random.Random(seed)
    return [v + rng.uniform(-spread, spread) for v in values]


def test_a_flat_loss_learnt_nothing():
    verdict = judge(noisy([0.693] * 40))
    assert verdict is not None and not verdict.learned
    assert math.isclose(verdict.first, 0.693, abs_tol=0.01) and verdict.logged == 40


def test_a_falling_loss_learnt():
    assert judge(noisy([0.69 - 0.01 * i for i in range(40)])).learned
    # a slow but real fall (0.69 -> 0.64, 7%) counts; a 1% drift does not
    assert judge([0.69 - 0.05 * i / 39 for i in range(40)]).learned
    assert not judge([0.69 - 0.007 * i / 39 for i in range(40)]).learned


def test_noise_larger_than_the_margin_is_not_taken_for_learning():
    """A flat curve whose batch-to-batch noise (+-0.05 on 0.69) moves two 2-record means by more than 3%."""
    flat = [0.7004, 0.677, 0.7086, 0.676, 0.712, 0.7275, 0.6893, 0.7387, 0.7455, 0.7118, 0.6757, 0.6587, 0.7139,
            0.6936, 0.7224, 0.6936, 0.6577, 0.6959, 0.6591, 0.7346]
    assert not judge(flat).learned
    for seed in range(20):
        assert not judge(noisy([0.69] * 20, spread=0.05, seed=seed)).learned
    assert judge(noisy([0.69 - 0.2 * i / 19 for i in range(20)], spread=0.05)).learned  # a real fall through it


def test_a_fast_fall_then_a_plateau_learnt():
    """Most of the learning inside the first log records still leaves the start well above the end."""
    assert judge([2.3, 1.2, 0.4] + [0.1] * 37).learned


def test_too_few_records_give_no_verdict():
    assert judge([0.7] * (MIN_LOGGED - 1)) is None
    assert judge([0.7] * MIN_LOGGED + [float("nan")] * 5) is not None
    assert judge([float("nan")] * 30) is None


def test_advice_names_the_budget_the_lr_and_the_search():
    flat = judge([0.69] * 20)
    text = advice(flat, steps=40, seconds=12.0, lr=1e-4, stage="finetune")
    assert text.startswith("warning: the training loss never left its starting level")
    assert f"at least {FEW_STEPS} steps" in text and "train.lr=0.0001" in text and "3e-05" in text
    assert "--search lr" in text
    long_run = advice(flat, steps=5000, seconds=600.0, lr=1e-4, stage="pretrain")
    assert "longer budget" not in long_run and "--search" not in long_run


def test_a_rising_loss_asks_for_a_lower_lr():
    rising = judge([0.7] * 5 + [0.9] * 15)
    assert not rising.learned
    text = advice(rising, steps=1000, seconds=60.0, lr=3e-3, stage="finetune")
    assert "a lower learning rate (train.lr=0.001" in text and "0.03" not in text
