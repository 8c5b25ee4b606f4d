"""Learning-rate schedule over budget *progress* in [0, 1] (time, steps or tokens consumed / budget).

Driving the schedule by progress rather than by step count lets a wall-clock budget end exactly when the
LR reaches its final value, as in Cramming (Geiping & Goldstein 2022) and "BERT on an academic budget".
"""

from __future__ import annotations

import math

from budgetlm.train.config import TrainConfig


def lr_at(progress: float, cfg: TrainConfig) -> float:
    p = min(max(progress, 0.0), 1.0)
    if cfg.warmup > 0 and p < cfg.warmup:
        return cfg.lr * p / cfg.warmup
    if cfg.decay == "constant":
        return cfg.lr
    q = (p - cfg.warmup) / (1.0 - cfg.warmup)  # decay progress in [0, 1]
    shape = 1.0 - q if cfg.decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * q))
    return cfg.lr * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * shape)
