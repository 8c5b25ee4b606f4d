"""`budgetlm probe MODEL --task mrpc`: a linear probe of frozen sentence embeddings on a pair classification task
(tasks/pair_probe.py), with the same data resolution as `finetune` (built-in task, or --train/--test files with
their columns inferred). Prints and returns test accuracy (and F1 of label 1 for 0/1 labels); --out writes JSON.
A model with all-but-the-top post-processing (chosen for STS) is probed with and without it, and the one with
the higher cross-validated accuracy on the training pairs is reported.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from budgetlm.atomic import check_output_file, write_json
from budgetlm.errors import UserError
from budgetlm.stages.embed import load_embedder
from budgetlm.tasks.classification import Examples, classification_metrics, label_ids, label_names, read_examples
from budgetlm.tasks.config import TaskDataConfig
from budgetlm.tasks.embedding import embed, encode_ids
from budgetlm.tasks.pair_probe import fit_probe, pair_features
from budgetlm.tasks.resolve import TaskSpec, resolve_task


def read_pair_task(data: TaskDataConfig) -> tuple[Examples, Examples, list[str], TaskSpec]:
    """(train, test, label names, the resolved task) of a labelled pair task with a test file; UserError otherwise."""
    data.validate()
    spec = resolve_task(data)
    if spec.task_type != "pair":
        raise UserError(f"the probe needs a pair classification task (two text columns and a label); "
                        f"{spec.name} is {spec.task_type}: {spec.inferred}")
    if not spec.test:
        raise UserError("the probe reports test figures: give --test FILE")
    cols = spec.columns
    train, test = (read_examples(f, cols.text, cols.label, cols.header, cols.text_b) for f in (spec.train, spec.test))
    return train, test, label_names(train), spec


def embedding_variants(model, texts: list[str], tok, batch_size: int = 64) -> dict[str, np.ndarray]:
    """{"model": the model's L2-normalised embeddings of `texts`}, plus {"raw": the same before its all-but-the-top}
    when its head has that post-processing (one encoder pass: the head's post-processing is applied to "raw")."""
    ids = encode_ids(tok, texts, model.cfg.max_seq_len)
    head = model.heads["embed"] if "embed" in model.heads else None
    if head is None or not head.top_pcs:
        return {"model": embed(model, ids, batch_size, progress=True).numpy()}
    with head.raw():
        raw = embed(model, ids, batch_size, progress=True)
    return {"model": F.normalize(head.postprocess(raw), dim=-1).numpy(), "raw": raw.numpy()}


def pair_sentences(*sets: Examples) -> tuple[list[str], dict[str, int]]:
    """Every sentence of the pairs once (texts) and its row in them."""
    texts = list(dict.fromkeys(t for ex in sets for t in ex.texts + ex.texts_b))
    return texts, {t: i for i, t in enumerate(texts)}


def pair_matrix(vectors: np.ndarray, row: dict[str, int], ex: Examples) -> np.ndarray:
    """Probe features of the pairs of `ex`, from `vectors` (row[text] = its row)."""
    return pair_features(vectors[[row[t] for t in ex.texts]], vectors[[row[t] for t in ex.texts_b]])


def probe_pairs(model_path: str | Path, data: TaskDataConfig, out: str | Path | None = None, folds: int = 5,
                batch_size: int = 64, trust_pickle: bool = False) -> dict:
    t0 = time.process_time()
    if out:
        check_output_file(Path(out), "give a .json file name")
    train, test, names, spec = read_pair_task(data)
    y_train, y_test = np.array(label_ids(train, names)), label_ids(test, names)
    print(f"probe: {spec.inferred}; {len(train.texts):,} training pairs, {len(test.texts):,} test pairs", file=sys.stderr)

    model, tok = load_embedder(model_path, trust_pickle)
    texts, row = pair_sentences(train, test)
    variants = embedding_variants(model, texts, tok, batch_size)  # the post-processing was chosen for STS:
    fits = {kind: fit_probe(pair_matrix(v, row, train), y_train, folds) for kind, v in variants.items()}  # CV decides
    chosen = max(fits, key=lambda kind: fits[kind][2])  # the higher cross-validated accuracy; ties keep "model"
    probe, c, cv_acc = fits[chosen]
    proba = probe.predict_proba(pair_matrix(variants[chosen], row, test))
    metrics = classification_metrics(torch.from_numpy(proba), y_test, names)
    results = {"task": spec.name, "model": str(model_path), "train_pairs": len(train.texts),
               "test_pairs": len(test.texts), "features": "|u-v|, u*v, cos", "folds": folds, "C": c,
               "cv_accuracy": round(cv_acc, 4), **{f"test_{k}": round(float(v), 4) for k, v in metrics.items()},
               "cpu_seconds": round(time.process_time() - t0, 1)}
    if len(fits) > 1:
        results.update(embeddings="post-processed" if chosen == "model" else "raw",
                       cv_accuracy_post_processed=round(fits["model"][2], 4), cv_accuracy_raw=round(fits["raw"][2], 4))
        print(f"probe: {results['embeddings']} embeddings (with / without the model's all-but-the-top), chosen by "
              f"cross-validated accuracy: {results['cv_accuracy_post_processed']} / {results['cv_accuracy_raw']}",
              file=sys.stderr)
    if out:
        write_json(Path(out), results)
    return results
