"""`budgetlm finetune`: a pre-trained encoder + a classification head, trained on labelled sentences; an
encoder-decoder trained text-to-text (stages/text2text.py); or a decoder prompted with label words (no training)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch

from budgetlm.config import FinetuneConfig
from budgetlm.errors import UserError
from budgetlm.data.batches import ExampleBatches
from budgetlm.models import Model, SequenceClassificationHead, count_parameters
from budgetlm.models.io import model_meta, save_model
from budgetlm.atomic import write_json
from budgetlm.stages.common import load_any_model, prepare_run_dir
from budgetlm.stages.text2text import finetune_text2text
from budgetlm.tasks.prompting import demonstrations, score_labels, verbaliser_map, warn_truncated
from budgetlm.tasks.classification import (
    classification_metrics, classification_step, label_ids, label_names, predict, read_examples, resolve_task_files,
)
from budgetlm.tokenizer import load_tokenizer
from budgetlm.train import distributed
from budgetlm.train.logs import plot_loss
from budgetlm.train.loop import train


def encode(tok, texts: list[str], max_len: int) -> list[list[int]]:
    tok.enable_truncation(max_len)
    return [e.ids for e in tok.encode_batch(texts)]  # [CLS] text [SEP]


def finetune(cfg: FinetuneConfig, model_path: str | Path, run_dir: str | Path, resume: bool = False, scratch: bool = False,
             trust_pickle: bool = False) -> dict:
    """Dispatch on `cfg.method` (default: the model family's own, DEFAULT_METHODS)."""
    run_dir = Path(run_dir)
    files = resolve_task_files(cfg.data)
    prepare_run_dir(run_dir, resume, inputs=list(files[:2]))
    pretrained, meta, tok_file = load_any_model(model_path, trust_pickle)
    family = pretrained.cfg.family
    method = cfg.method or DEFAULT_METHODS[family]
    if family not in METHOD_FAMILIES[method]:
        raise UserError(f"--method {method} needs a model of family {' or '.join(METHOD_FAMILIES[method])}; "
                        f"this one is a(n) {family} (kind {meta.get('kind')})", path=str(model_path))
    return METHODS[method](cfg, files, pretrained, tok_file, model_path, run_dir, resume, scratch)


def finetune_head(cfg: FinetuneConfig, files: tuple, pretrained, tok_file: Path, model_path, run_dir: Path,
                  resume: bool, scratch: bool) -> dict:
    """A pre-trained encoder + a classification head, trained on labelled sentences."""
    train_file, valid_file, text_col, label_col, header = files
    train_ex = read_examples(train_file, text_col, label_col, header)
    valid_ex = read_examples(valid_file, text_col, label_col, header)
    names = label_names(train_ex)
    y_train, y_valid = label_ids(train_ex, names), label_ids(valid_ex, names)

    model_cfg = dataclasses.replace(pretrained.cfg)
    if cfg.dropout >= 0:
        model_cfg.dropout = cfg.dropout
    max_len = min(cfg.data.max_seq_len or model_cfg.max_seq_len, model_cfg.max_seq_len)
    tok = load_tokenizer(tok_file)
    x_train, x_valid = encode(tok, train_ex.texts, max_len), encode(tok, valid_ex.texts, max_len)

    torch.manual_seed(cfg.train.seed)
    model = Model(model_cfg, {"cls": SequenceClassificationHead(model_cfg, cfg.head, len(names))})
    if not scratch:
        model.encoder.load_state_dict(pretrained.encoder.state_dict())
    del pretrained
    if distributed.is_main():
        print(f"fine-tuning {'a randomly initialised' if scratch else 'the pre-trained'} encoder "
              f"({count_parameters(model) / 1e6:.1f}M parameters) on {len(x_train):,} examples, "
              f"{len(names)} labels; validating on {len(x_valid):,}", file=sys.stderr)
        write_json(run_dir / "config.json", {"stage": "finetune", **dataclasses.asdict(cfg), "resolved": {
            "model": str(model_path), "scratch": scratch, "train_file": train_file, "valid_file": valid_file,
            "text_column": text_col, "label_column": label_col, "labels": names, "ranks": distributed.world().size}})

    def step_fn(model, batch, step, micro):
        loss, logits = classification_step(model, batch)
        acc = (logits.detach().argmax(-1) == batch["labels"]).float().mean()
        return loss, int(batch["attention_mask"].sum()), {"train_accuracy": round(float(acc), 4)}

    def evaluate(model):
        return classification_metrics(predict(model, x_valid), y_valid)

    batches = ExampleBatches(x_train, y_train, cfg.train.batch_size, cfg.train.seed)
    state = train(model, batches, step_fn, cfg.train, run_dir, evaluate=evaluate, resume=resume, desc="finetune")
    results = state.last_eval()
    if not distributed.is_main():  # rank 0 reports for the whole process group
        return results
    results.update({"steps": state.step, "train_seconds": round(state.elapsed, 1), "valid_file": valid_file,
                    "labels": names, "scratch": scratch, "pretrained": str(model_path)})
    save_model(model, run_dir / "model", model_meta(model, "classifier", head=dataclasses.asdict(cfg.head), labels=names,
                                                      stage="finetune", results=results), tok_file)
    write_json(run_dir / "results.json", results)
    plot_loss(run_dir)
    return results


def finetune_prompt(cfg: FinetuneConfig, files: tuple, model, tok_file: Path, model_path, run_dir: Path,
                    resume: bool, scratch: bool) -> dict:
    """Zero-/few-shot classification with a decoder: score each label's verbaliser; nothing is trained."""
    if resume or scratch:
        raise UserError("--method prompt trains nothing: --resume and --scratch do not apply")
    train_file, valid_file, text_col, label_col, header = files
    train_ex = read_examples(train_file, text_col, label_col, header)
    valid_ex = read_examples(valid_file, text_col, label_col, header)
    names = label_names(train_ex)
    gold = label_ids(valid_ex, names)
    words = verbaliser_map(cfg.prompt, names, cfg.data.task)
    prefix = demonstrations(cfg.prompt, train_ex, words)
    write_json(run_dir / "config.json", {"stage": "finetune", **dataclasses.asdict(cfg), "resolved": {
        "model": str(model_path), "train_file": train_file, "valid_file": valid_file, "labels": names,
        "verbalisers": words, "demonstrations": prefix}})
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


METHODS = {"head": finetune_head, "text2text": finetune_text2text, "prompt": finetune_prompt}
METHOD_FAMILIES = {"head": ("encoder",), "text2text": ("encoder_decoder",), "prompt": ("decoder",)}
DEFAULT_METHODS = {"encoder": "head", "encoder_decoder": "text2text", "decoder": "prompt"}
