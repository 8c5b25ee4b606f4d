"""Padding in embedding-training batches, random vs length-grouped (`data.group_by_length`): positions after
padding per real token over N batches of the STS-B + MRPC training sentences (the distillation preset's data).

    BUDGETLM_DATA=/work/shared/data python bench/embedding_padding.py --tokenizer T.json [--batch-size 32]
"""

from __future__ import annotations

import argparse

import numpy as np

from budgetlm.data.pairs import read_pair_file
from budgetlm.data.root import in_root
from budgetlm.tasks.embedding import EmbeddingBatches, build_embedding_data
from budgetlm.tokenizer import load_tokenizer
from common import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json of the student")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--batches", type=int, default=2000)
    args = ap.parse_args()
    sources = [read_pair_file(str(in_root("stsb", "sts-train.csv")), 4.0),
               read_pair_file(str(in_root("mrpc", "msr_paraphrase_train.txt")), 4.0)]
    data = build_embedding_data(sources, load_tokenizer(args.tokenizer), args.max_len)
    data.distill = list(range(len(data.texts)))
    data.teacher = np.zeros((len(data.texts), 1), dtype=np.float32)  # only the batch shapes matter here
    print(machine_line())
    print(f"{len(data.texts):,} sentences, batches of {args.batch_size}")
    for grouped in (False, True):
        batches = EmbeddingBatches(data, args.batch_size, 0, {"distill": 1}, group_by_length=grouped)
        real = slots = 0
        for _ in range(args.batches):
            mask = next(batches)["distill"]["a"]["attention_mask"]
            real, slots = real + int(mask.sum()), slots + mask.numel()
        print(f"{'length-grouped' if grouped else 'random':>14}: {slots / real:.2f} positions per real token after padding "
              f"({real / args.batches:.0f} real tokens per batch)")


if __name__ == "__main__":
    main()
