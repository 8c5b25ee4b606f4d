"""All-but-the-top: the fitted directions, the choice of k on validation pairs, and the head doing the same."""

from __future__ import annotations

import numpy as np
import torch

from budgetlm.models import EmbeddingHead
from budgetlm.tasks.embedding_postprocess import choose_k, remove_top, top_components


def _dominated(rng, n, dim=16):
    """Unit vectors whose first coordinate varies far more than the others: one direction carries no meaning."""
    x = rng.normal(size=(n, dim))
    x[:, 0] *= 10
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_top_components_find_the_dominant_direction_and_removal_is_orthogonal():
    rng = np.random.default_rng(0)
    x = _dominated(rng, 500)
    center, comps = top_components(x, 3)
    assert comps.shape == (3, 16)
    np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-8)
    assert abs(comps[0, 0]) > 0.9  # the offset axis comes first
    out = remove_top(x, center, comps)
    np.testing.assert_allclose(out @ comps.T, 0.0, atol=1e-8)
    np.testing.assert_allclose(remove_top(x, center, comps[:0]), x - center)  # k = 0: only centred


def test_choose_k_prefers_removal_when_a_direction_hides_similarity():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(300, 16))
    base[:, 0] = 0
    noise = 0.6 * rng.normal(size=(300, 16))
    noise[:, 0] = 0
    scores = rng.random(300)
    a = base.copy()
    b = base * scores[:, None] + noise * (1 - scores[:, None])  # more similar to a when the score is high
    for m in (a, b):
        m[:, 0] = 40 * rng.random(300)  # a meaningless coordinate that drowns every cosine, centred or not
    train = np.concatenate([a, b])
    k, center, comps, rho = choose_k(train, a, b, scores.tolist(), max_k=4)
    assert set(rho) == {0, 1, 2, 3, 4} and k >= 1 and comps.shape == (k, 16)
    assert rho[k] > rho[0] + 5 and rho[k] == max(rho.values())  # 94.5 vs 84.7


def test_head_applies_the_fitted_post_processing(tiny_model_config):
    cfg = tiny_model_config()
    head = EmbeddingHead(cfg, "mean", 8)
    hidden, mask = torch.randn(5, 7, cfg.d_model), torch.ones(5, 7, dtype=torch.long)
    plain = head(hidden, mask).detach().numpy()
    rng = np.random.default_rng(0)
    center, comps = top_components(rng.normal(size=(50, 8)), 2)
    head.set_top_components(torch.from_numpy(center).float(), torch.from_numpy(comps).float())
    assert head.top_pcs == 2 and set(head.state_dict()) >= {"center", "components"}
    np.testing.assert_allclose(head(hidden, mask).detach().numpy(), remove_top(plain, center, comps), atol=1e-5)
    head.set_top_components(torch.zeros(8), torch.zeros(0, 8))  # k = 0 removes it again
    assert head.top_pcs == 0 and "center" not in head.state_dict()
    np.testing.assert_allclose(head(hidden, mask).detach().numpy(), plain, atol=1e-6)
