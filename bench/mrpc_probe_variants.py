"""MRPC linear probe of frozen embedding models, every variant side by side: the embeddings with and without the
model's all-but-the-top post-processing (`budgetlm probe` fits both and reports the one cross-validation
prefers), and a wider grid for C (1e-6..10 in half decades) beside the probe's own (1e-4..10). Data, embeddings,
features and fit are `budgetlm probe`'s own pieces (stages/probe.py, tasks/pair_probe.py); C is chosen by 5-fold
cross-validation on the training pairs, so every variant could be chosen by its `cv_accuracy` without looking
at the test pairs.

    python bench/mrpc_probe_variants.py runs/s10-cd01/stsb-distill-scratch-seed0 ... --out bench/results/mrpc-probe-v11.json
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from budgetlm.stages.embed import load_embedder
from budgetlm.stages.probe import embedding_variants, pair_matrix, pair_sentences, read_pair_task
from budgetlm.tasks.classification import label_ids
from budgetlm.tasks.config import TaskDataConfig
from budgetlm.tasks.pair_probe import C_GRID, fit_probe
from common import machine_line, write_json

GRIDS = {"probe": C_GRID, "wide": tuple(float(c) for c in 10.0 ** np.arange(-6, 1.01, 0.5))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="embedding run or model dirs")
    ap.add_argument("--out", help="write the rows to this JSON file")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    train, test, names, _ = read_pair_task(TaskDataConfig(task="mrpc"))
    y_train, y_test = np.array(label_ids(train, names)), np.array(label_ids(test, names))
    texts, row = pair_sentences(train, test)

    print(machine_line(), flush=True)
    rows = []
    for path in args.models:
        model, tok = load_embedder(path, False)
        variants = embedding_variants(model, texts, tok)
        k = model.heads["embed"].top_pcs if "embed" in model.heads else 0
        for name, vectors in variants.items():
            kind = "post-processed" if name == "model" and k else "raw"
            x_train, x_test = pair_matrix(vectors, row, train), pair_matrix(vectors, row, test)
            for grid_name, grid in GRIDS.items():
                probe, c, cv = fit_probe(x_train, y_train, 5, grid)
                acc = float((probe.predict(x_test) == y_test).mean())
                rows.append({"model": path, "embeddings": kind, "top_pcs": k, "grid": grid_name, "C": c,
                             "cv_accuracy": round(cv, 4), "test_accuracy": round(acc, 4)})
                print(f"{path} {kind} grid={grid_name} C={c:g} cv={cv:.4f} test={acc:.4f}", flush=True)
    if args.out:
        write_json(Path(args.out), {"task": "mrpc", "rows": rows}, indent=1)


if __name__ == "__main__":
    main()
