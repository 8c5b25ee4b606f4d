"""A non-neural reference for MRPC: logistic regression on 12 word-overlap features of each pair (unigram,
bigram and trigram overlap as a share of either sentence and of their union; length difference; whether the
numbers match, and how many differ), fitted exactly like `budgetlm probe` fits embedding features (standardised,
C by 5-fold cross-validation on the training pairs, tasks/pair_probe.py). It says how much of MRPC a model
could get from surface overlap alone.

    BUDGETLM_DATA=/work/shared/data python bench/mrpc_lexical_baseline.py
"""

from __future__ import annotations

import argparse
import re

import numpy as np

from budgetlm.data.pairs import read_mrpc
from budgetlm.data.root import in_root
from budgetlm.tasks.pair_probe import fit_probe
from common import machine_line


def words(s: str) -> list[str]:
    return re.findall(r"\w+", s.lower())


def ngrams(w: list[str], n: int) -> set:
    return set(zip(*[w[i:] for i in range(n)]))


def overlap_features(a: str, b: str) -> list[float]:
    wa, wb = words(a), words(b)
    out = []
    for n in (1, 2, 3):
        ga, gb = ngrams(wa, n), ngrams(wb, n)
        common = len(ga & gb)
        out += [common / max(1, len(ga)), common / max(1, len(gb)), common / max(1, len(ga | gb))]
    na, nb = set(re.findall(r"\d+", a)), set(re.findall(r"\d+", b))
    out += [abs(len(wa) - len(wb)) / max(1, len(wa), len(wb)), float(na == nb), float(len(na ^ nb))]
    return out


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    train = read_mrpc(in_root("mrpc", "msr_paraphrase_train.txt"))
    test = read_mrpc(in_root("mrpc", "msr_paraphrase_test.txt"))
    x_train = np.array([overlap_features(a, b) for _, a, b in train])
    x_test = np.array([overlap_features(a, b) for _, a, b in test])
    y_train, y_test = np.array([y for y, _, _ in train]), np.array([y for y, _, _ in test])
    probe, c, cv = fit_probe(x_train, y_train)
    pred = probe.predict(x_test)
    tp = int(((pred == 1) & (y_test == 1)).sum())
    f1 = 2 * tp / max(1, int((pred == 1).sum()) + int((y_test == 1).sum()))
    print(machine_line())
    print(f"MRPC test: accuracy {100 * (pred == y_test).mean():.2f}, F1 {100 * f1:.2f} (C={c}, 5-fold CV accuracy "
          f"{100 * cv:.2f}); majority class {100 * max(y_test.mean(), 1 - y_test.mean()):.2f}")


if __name__ == "__main__":
    main()
