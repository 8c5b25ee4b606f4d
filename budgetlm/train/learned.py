"""Did a run learn anything? The verdict on its logged training losses, and what to try when it did not (issue #23).

A run "learnt nothing" when the mean loss of the last tenth of its log records is not clearly below the mean of the
first tenth: by at least 3% of the start, and by more than the batch-to-batch noise could move two such means (three
standard errors; the noise is read off the spread of successive differences, which a smooth trend hardly moves),
so a flat but noisy curve is not taken for learning (about 1 in 1,000 flat curves of 20 records is). Fewer than
MIN_LOGGED records give no verdict (a 5-step smoke run proves nothing either way). The stage skeleton
(stages/skeleton.py) asks once a run is over, records `learned` in results.json and prints `advice`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

MIN_LOGGED = 10  # log records a verdict needs (train.log_every steps each)
FLAT_RATIO = 0.97  # the loss must end below this fraction of where it started
NOISE_SE = 3.0  # ... and below the start by more than this many standard errors of the two means' difference
ROSE_RATIO = 1.05  # ending above this fraction of the start: the updates pushed the loss up (lr too high)
FEW_STEPS = 300  # below this many optimizer steps, the budget itself is the first suspect


@dataclass(frozen=True)
class Verdict:
    learned: bool
    first: float  # mean loss of the first tenth of the log records
    last: float  # mean loss of the last tenth
    logged: int  # log records judged


def judge(losses: list[float], ratio: float = FLAT_RATIO, min_logged: int = MIN_LOGGED) -> Verdict | None:
    """The verdict on a run's logged losses (in step order), or None with fewer than `min_logged` finite ones."""
    finite = [float(x) for x in losses if isinstance(x, (int, float)) and math.isfinite(x)]
    if len(finite) < min_logged:
        return None
    k = max(1, len(finite) // 10)
    first, last = sum(finite[:k]) / k, sum(finite[-k:]) / k
    margin = max((1 - ratio) * first, NOISE_SE * _noise(finite) * math.sqrt(2 / k))
    return Verdict(first - last > margin, first, last, len(finite))


def _noise(losses: list[float]) -> float:
    """The standard deviation of one log record's loss around the curve: that of successive differences (which a
    smooth trend hardly moves) over sqrt(2), since a difference holds two records' noise."""
    return statistics.stdev(b - a for a, b in zip(losses, losses[1:])) / math.sqrt(2)


def advice(verdict: Verdict, steps: int, seconds: float, lr: float, stage: str) -> str:
    """One plain paragraph: what happened, and the budget or setting this data needs."""
    what = (f"the training loss never left its starting level ({verdict.first:.4g} over the first tenth of the "
            f"{verdict.logged} log records, {verdict.last:.4g} over the last tenth): this run learnt nothing")
    tries = []
    if verdict.last > ROSE_RATIO * verdict.first:
        tries.append(f"a lower learning rate (train.lr={lr / 3:.2g}; this run used {lr:.2g})")
    else:
        if steps < FEW_STEPS:
            tries.append(f"a longer budget (this run made only {steps} optimizer steps in {seconds:.0f}s; give at "
                         f"least {FEW_STEPS} steps, e.g. --budget {FEW_STEPS}steps or several times the time)")
        tries.append(f"another learning rate (this run used train.lr={lr:.2g}; try {3 * lr:.2g} or {lr / 3:.2g})")
    if stage == "finetune":
        tries.append("`--search lr`, which tries a few learning rates on a slice of the budget and keeps the best")
    return f"warning: {what}. Try " + "; or ".join(tries) + "."
