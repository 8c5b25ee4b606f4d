"""A linear probe of frozen sentence embeddings on a pair classification task: the SentEval protocol
(Conneau et al. 2017, "Supervised Learning of Universal Sentence Representations", used there for MRPC and
SICK-E). Each sentence is embedded on its own; a pair (u, v) becomes [|u - v|, u * v, cos(u, v)]; a logistic
regression on those features, its C chosen by cross-validation on the training pairs, predicts the label.
Nothing is fine-tuned, so the figure says what the embedding model already knows about the relation.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from budgetlm.errors import UserError

C_GRID = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N, 2D + 1) from two (N, D) arrays of L2-normalised embeddings: |u - v|, u * v, then their cosine."""
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f"pair_features needs two (N, D) arrays of one shape, got {u.shape} and {v.shape}")
    prod = u * v
    return np.concatenate([np.abs(u - v), prod, prod.sum(-1, keepdims=True)], axis=1)


def fit_probe(x: np.ndarray, y: np.ndarray, folds: int = 5, grid: tuple[float, ...] = C_GRID) -> tuple[Pipeline, float, float]:
    """(standardise + logistic regression refit on all of x, chosen C, its mean cross-validated accuracy).

    C is chosen by stratified k-fold cross-validation on the training pairs (the test pairs are never seen);
    ties go to the smaller C, the stronger regularisation."""
    y = np.asarray(y)
    if folds < 2:
        raise UserError("the probe needs folds >= 2 (k-fold cross-validation chooses C)")
    counts = np.bincount(y) if len(y) else np.array([])
    if (counts > 0).sum() < 2 or counts[counts > 0].min() < folds:
        raise UserError(f"the probe needs two labels or more, each on at least {folds} training pairs "
                        f"(label counts: {dict(enumerate(counts.tolist()))})")
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                          {"logisticregression__C": list(grid)}, cv=StratifiedKFold(folds, shuffle=True, random_state=0),
                          scoring="accuracy")
    search.fit(x, y)
    return search.best_estimator_, float(search.best_params_["logisticregression__C"]), float(search.best_score_)
