"""Regression: numeric labels (errors name the line), MSE loss, Pearson / Spearman."""

from __future__ import annotations

import pytest
import torch

from budgetlm.errors import UserError
from budgetlm.tasks.base import Columns
from budgetlm.tasks.regression import Regression, regression_metrics


def test_metrics_hand_example():
    m = regression_metrics([1.0, 2.0, 3.0, 5.0], [1.0, 2.0, 3.0, 4.0])
    assert m["mse"] == pytest.approx(0.25)
    assert m["spearman"] == pytest.approx(1.0)  # same order
    assert 0.9 < m["pearson"] < 1.0
    assert regression_metrics([2.0, 2.0], [1.0, 3.0])["pearson"] == 0.0  # constant prediction: defined as 0


def test_non_numeric_label_names_the_line(tmp_path):
    p = tmp_path / "r.tsv"
    p.write_text("sentence\tscore\na\t0.5\nb\thigh\n")
    with pytest.raises(UserError, match=r"r\.tsv:3: label 'high' is not a number"):
        Regression().read(str(p), Columns("sentence", "", "score"))


def test_loss_is_mse():
    assert float(Regression().loss(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0]))) == pytest.approx(2.5)
