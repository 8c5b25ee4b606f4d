"""Multi-task sampling: probabilities, observed proportions, determinism and resume."""

from __future__ import annotations

import numpy as np
import pytest

from budgetlm.data.batches import ExampleBatches
from budgetlm.tasks.multitask import MultiTaskBatches, draw_task, sampling_probs


def test_sampling_probabilities():
    assert sampling_probs([100, 300], "proportional") == pytest.approx([0.25, 0.75])
    assert sampling_probs([100, 300], "uniform") == pytest.approx([0.5, 0.5])
    assert sampling_probs([100, 400], "temperature", 2.0) == pytest.approx([1 / 3, 2 / 3])  # sqrt: 10 vs 20
    assert sampling_probs([100, 400], "temperature", 1.0) == pytest.approx(sampling_probs([100, 400], "proportional"))


def _sources(sizes):
    return [ExampleBatches([[5 + t]] * n, [t] * n, batch_size=2, seed=t) for t, n in enumerate(sizes)]


@pytest.mark.parametrize("sampling,temperature", [("proportional", 1.0), ("temperature", 3.0), ("uniform", 1.0)])
def test_observed_proportions_match(sampling, temperature):
    sizes = [50, 200, 750]
    probs = sampling_probs(sizes, sampling, temperature)
    n = 4000
    counts = np.bincount([draw_task(1, k, np.asarray(probs)) for k in range(n)], minlength=3)
    for c, p in zip(counts, probs):  # within 4 standard deviations of the binomial
        assert abs(c - n * p) <= 4 * (n * p * (1 - p)) ** 0.5


def test_batches_come_from_their_task():
    batches = MultiTaskBatches(_sources([10, 10]), [0.5, 0.5], seed=0)
    for _ in range(20):
        b = next(batches)
        assert b["labels"].tolist() == [b["task"]] * 2 and b["ids"][0, 0].item() == 5 + b["task"]


def test_resume_continues_the_same_sequence():
    a = MultiTaskBatches(_sources([7, 13]), [0.3, 0.7], seed=3)
    for _ in range(11):
        next(a)
    state = a.state_dict()
    expected = [(b["task"], b["ids"].tolist()) for b in (next(a) for _ in range(15))]
    b = MultiTaskBatches(_sources([7, 13]), [0.3, 0.7], seed=3)
    b.load_state_dict(state)
    assert [(x["task"], x["ids"].tolist()) for x in (next(b) for _ in range(15))] == expected
