"""The prompt method of `budgetlm finetune`: zero-/few-shot classification with a decoder, which scores each
label's verbaliser (tasks/prompting.py). Nothing is trained, so it runs no loop: a function, not a recipe."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch

from budgetlm import runtime
from budgetlm.atomic import write_json
from budgetlm.stages.config import FinetuneConfig
from budgetlm.errors import UserError
from budgetlm.stages.common import prepare_run_dir
from budgetlm.stages.method import Start, check_family, single_task_files
from budgetlm.tasks.classification import classification_metrics, label_ids, label_names, read_examples
from budgetlm.tasks.prompting import demonstrations, score_labels, verbaliser_map, warn_truncated
from budgetlm.tokenizer import load_tokenizer

FAMILIES = ("decoder",)


def prompt_input_files(cfg: FinetuneConfig) -> list[str]:
    return list(single_task_files(cfg, "prompt")[:2])


def finetune_prompt(cfg: FinetuneConfig, start: Start, run_dir: Path, resume: bool, scratch: bool) -> dict:
    """Zero-/few-shot classification with a decoder: score each label's verbaliser; nothing is trained."""
    check_family("prompt", FAMILIES, start)
    files = single_task_files(cfg, "prompt")
    if resume or scratch:
        raise UserError("--method prompt trains nothing: --resume and --scratch do not apply")
    prepare_run_dir(run_dir, resume, inputs=list(files[:2]))
    model, _, tok_file = start.load()
    model_path = start.path
    train_file, valid_file, text_col, label_col, header = files
    train_ex = read_examples(train_file, text_col, label_col, header)
    valid_ex = read_examples(valid_file, text_col, label_col, header)
    names = label_names(train_ex)
    gold = label_ids(valid_ex, names)
    words = verbaliser_map(cfg.prompt, names, cfg.data.task)
    prefix = demonstrations(cfg.prompt, train_ex, words)
    write_json(run_dir / "config.json", {"stage": "finetune", **dataclasses.asdict(cfg), "resolved": {
        "model": str(model_path), "train_file": train_file, "valid_file": valid_file, "labels": names,
        "verbalisers": words, "demonstrations": prefix, "runtime": runtime.resolve(cfg.train)}})
    print(f"{cfg.prompt.shots}-shot prompting: scoring {len(names)} verbalisers ({', '.join(words.values())}) "
          f"for {len(valid_ex.texts):,} examples", file=sys.stderr)
    t0 = time.perf_counter()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    scores, truncated = score_labels(model, load_tokenizer(tok_file), cfg.prompt, prefix, valid_ex.texts, list(words.values()))
    warn_truncated(truncated, len(valid_ex.texts))
    results = classification_metrics(scores, gold)
    results.update({"method": "prompt", "shots": cfg.prompt.shots, "truncated_prompts": truncated,
                    "seconds": round(time.perf_counter() - t0, 1), "valid_file": valid_file, "labels": names,
                    "verbalisers": words, "pretrained": str(model_path)})
    write_json(run_dir / "results.json", results)
    return results
