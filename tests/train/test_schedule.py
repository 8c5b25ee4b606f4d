"""LR schedule over budget progress: linear warm-up from 0, peak at the end of warm-up, min_lr_ratio * lr at 1.0."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetlm.train.config import TrainConfig
from budgetlm.train.schedule import lr_at


def cfg(**kw) -> TrainConfig:
    c = TrainConfig(**kw)
    c.validate()
    return c


@pytest.mark.parametrize("decay", ["linear", "cosine", "constant"])
def test_warmup_is_linear_from_zero_to_the_peak(decay):
    c = cfg(lr=1e-3, warmup=0.2, decay=decay)
    assert lr_at(0.0, c) == 0.0
    for p in (0.05, 0.1, 0.15):
        assert lr_at(p, c) == pytest.approx(1e-3 * p / 0.2, rel=1e-12)
    assert lr_at(0.2, c) == 1e-3  # the peak, exactly at the end of warm-up


@pytest.mark.parametrize("decay", ["linear", "cosine"])
@pytest.mark.parametrize("min_lr_ratio", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("warmup", [0.0, 0.06, 0.3])
def test_decay_ends_exactly_at_min_lr(decay, min_lr_ratio, warmup):
    c = cfg(lr=2e-3, warmup=warmup, decay=decay, min_lr_ratio=min_lr_ratio)
    assert lr_at(1.0, c) == 2e-3 * min_lr_ratio
    assert lr_at(warmup, c) == 2e-3
    assert lr_at(1.5, c) == lr_at(1.0, c)  # clamped past the end
    assert lr_at(-0.1, c) == lr_at(0.0, c)


def test_linear_midpoint_and_cosine_midpoint():
    lin = cfg(lr=1.0, warmup=0.0, decay="linear", min_lr_ratio=0.0)
    cos = cfg(lr=1.0, warmup=0.0, decay="cosine", min_lr_ratio=0.0)
    assert lr_at(0.5, lin) == pytest.approx(0.5)
    assert lr_at(0.25, lin) == pytest.approx(0.75)
    assert lr_at(0.5, cos) == pytest.approx(0.5)
    assert lr_at(0.25, cos) == pytest.approx(0.5 * (1 + 2 ** -0.5))  # cosine stays high longer


def test_constant_after_warmup():
    c = cfg(lr=1e-3, warmup=0.1, decay="constant", min_lr_ratio=0.5)
    assert [lr_at(p, c) for p in (0.1, 0.5, 1.0)] == [1e-3] * 3


@settings(max_examples=100, deadline=None)
@given(
    warmup=st.floats(0.0, 0.9), decay=st.sampled_from(["linear", "cosine"]), min_lr_ratio=st.floats(0.0, 1.0),
    a=st.floats(0.0, 1.0), b=st.floats(0.0, 1.0),
)
def test_monotone_up_then_down_and_bounded(warmup, decay, min_lr_ratio, a, b):
    c = cfg(lr=1e-3, warmup=warmup, decay=decay, min_lr_ratio=min_lr_ratio)
    lo, hi = min(a, b), max(a, b)
    assert 0.0 <= lr_at(lo, c) <= 1e-3 * (1 + 1e-12)
    if hi <= warmup:
        assert lr_at(lo, c) <= lr_at(hi, c)
    elif lo >= warmup:
        assert lr_at(lo, c) >= lr_at(hi, c) - 1e-18
        assert lr_at(hi, c) >= 1e-3 * min_lr_ratio - 1e-18
