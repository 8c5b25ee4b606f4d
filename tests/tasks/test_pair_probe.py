"""The SentEval-style pair probe: features by hand, C chosen by cross-validation, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from budgetlm.errors import UserError
from budgetlm.tasks.pair_probe import C_GRID, fit_probe, pair_features


def test_pair_features_by_hand():
    u = np.array([[1.0, 0.0], [0.6, 0.8]])
    v = np.array([[0.0, 1.0], [0.6, 0.8]])
    np.testing.assert_allclose(pair_features(u, v), [[1.0, 1.0, 0.0, 0.0, 0.0],
                                                     [0.0, 0.0, 0.36, 0.64, 1.0]])
    with pytest.raises(ValueError):
        pair_features(u, v[:1])


def _pairs(rng, n, dim=8):
    """Unit vectors; label 1 = v is u plus a little noise (a paraphrase), 0 = an unrelated vector."""
    u = rng.normal(size=(n, dim))
    y = rng.integers(0, 2, n)
    v = np.where(y[:, None] == 1, u + 0.3 * rng.normal(size=(n, dim)), rng.normal(size=(n, dim)))
    norm = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    return pair_features(norm(u), norm(v)), y


def test_probe_learns_the_relation_and_chooses_c_by_cross_validation():
    rng = np.random.default_rng(0)
    x, y = _pairs(rng, 300)
    probe, c, cv_acc = fit_probe(x, y, folds=5)
    assert c in C_GRID and cv_acc > 0.95
    x_test, y_test = _pairs(rng, 200)
    assert probe.score(x_test, y_test) > 0.95


def test_probe_refuses_one_label_and_too_few_examples():
    x = np.zeros((20, 5))
    with pytest.raises(UserError, match="two labels"):
        fit_probe(x, np.ones(20, dtype=int))
    with pytest.raises(UserError, match="at least 5"):
        fit_probe(x, np.array([0] * 17 + [1] * 3))
    with pytest.raises(UserError, match="folds >= 2"):
        fit_probe(x, np.array([0, 1] * 10), folds=1)
