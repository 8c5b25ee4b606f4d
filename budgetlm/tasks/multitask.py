"""Multi-task batches: each optimizer micro-batch comes from one task, drawn with fixed probabilities.

proportional: p_i ~ n_i; temperature T: p_i ~ n_i^(1/T) (T=1 proportional, T->inf uniform), which lifts
small tasks without starving large ones (Arivazhagan et al. 2019, "Massively multilingual NMT"); uniform:
p_i = 1/k. The draw for batch k is a pure function of (seed, k), so a resumed run continues exactly.
"""

from __future__ import annotations

import numpy as np

from budgetlm.data.batches import ExampleBatches


def sampling_probs(sizes: list[int], sampling: str, temperature: float = 1.0) -> list[float]:
    n = np.asarray(sizes, dtype=np.float64)
    if sampling == "uniform":
        w = np.ones_like(n)
    elif sampling == "proportional":
        w = n
    elif sampling == "temperature":
        w = n ** (1.0 / temperature)
    else:
        raise ValueError(f"unknown sampling {sampling!r}")
    return (w / w.sum()).tolist()


def draw_task(seed: int, k: int, probs) -> int:
    """The task of batch k: a pure function of (seed, k), so resuming at batch k continues the same sequence."""
    if len(probs) == 1:
        return 0
    return int(np.random.default_rng([seed, 7919, k]).choice(len(probs), p=probs))


class MultiTaskBatches:
    """Batches from several ExampleBatches; each batch dict gets 'task' (its index in `sources`)."""

    def __init__(self, sources: list[ExampleBatches], probs: list[float], seed: int):
        self.sources, self.probs, self.seed = sources, np.asarray(probs), seed
        self.drawn = 0

    def __next__(self) -> dict:
        task = draw_task(self.seed, self.drawn, self.probs)
        self.drawn += 1
        batch = next(self.sources[task])
        batch["task"] = task
        return batch

    def shard(self, rank: int, world: int) -> None:
        """Under torchrun: the task draw is a pure function of (seed, step), so every rank draws the same task,
        and each takes its own slice of that task's global batch."""
        for s in self.sources:
            s.shard(rank, world)

    def state_dict(self) -> dict:
        return {"drawn": self.drawn, "sources": [s.state_dict() for s in self.sources]}

    def load_state_dict(self, state: dict) -> None:
        self.drawn = int(state["drawn"])
        for s, st in zip(self.sources, state["sources"]):
            s.load_state_dict(st)
