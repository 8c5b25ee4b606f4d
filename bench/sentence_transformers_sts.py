"""STS-B test Spearman of a sentence-transformers directory, e.g. a `budgetlm export` of an embedding model, scored
through sentence-transformers alone (its tokenizer, pooling and modules), to compare with the figure budgetlm
reported for the model it came from.

    BUDGETLM_DATA=/work/shared/data python bench/sentence_transformers_sts.py EXPORT_DIR [--split test]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.stats import spearmanr

from budgetlm.data.pairs import read_scored_pairs
from budgetlm.data.root import in_root
from common import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a sentence-transformers directory")
    ap.add_argument("--split", choices=["dev", "test"], default="test")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    pairs = read_scored_pairs(str(in_root("stsb", f"sts-{args.split}.csv")))
    model = SentenceTransformer(args.model, device="cpu", local_files_only=True)
    a, b = (model.encode([p[i] for p in pairs], batch_size=64, normalize_embeddings=True) for i in (0, 1))
    rho = spearmanr((a * b).sum(1), np.array([p[2] for p in pairs])).statistic * 100
    print(machine_line())
    print(f"{args.model}: STS-B {args.split} Spearman {rho:.2f} over {len(pairs):,} pairs (sentence-transformers)")


if __name__ == "__main__":
    main()
