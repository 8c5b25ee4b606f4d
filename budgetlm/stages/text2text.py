"""`budgetlm finetune` for an encoder-decoder: train on (input, target) text pairs, evaluate by generating.

Built-in classification tasks are verbalised (SST-2: "sentence -> positive/negative"); any TSV/CSV/JSONL with
input and target columns works as it is. The one training loop runs it; evaluation decodes greedily with
the KV cache and reports exact match on the validation file.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from budgetlm.atomic import write_json
from budgetlm.config import FinetuneConfig
from budgetlm.data.batches import PairBatches
from budgetlm.errors import UserError
from budgetlm.models import EncoderDecoderModel, count_parameters
from budgetlm.models.io import model_meta, save_model
from budgetlm.tasks.classification import read_examples
from budgetlm.objectives.seq2seq import seq2seq_loss
from budgetlm.tasks.registry import VERBALISERS
from budgetlm.tasks.text2text import (
    default_columns, encode_sources, encode_targets, exact_match, generate_all, targets_of,
)
from budgetlm.tokenizer import PAD, load_tokenizer
from budgetlm.train.logs import plot_loss
from budgetlm.train.loop import train


def finetune_text2text(cfg: FinetuneConfig, files: tuple, pretrained: EncoderDecoderModel, tok_file: Path, model_path,
                       run_dir: Path, resume: bool, scratch: bool) -> dict:
    train_file, valid_file, text_col, label_col, header = files
    if header is None:
        text_col, label_col = default_columns(train_file, text_col, label_col)
    train_ex = read_examples(train_file, text_col, label_col, header)
    valid_ex = read_examples(valid_file, text_col, label_col, header)
    verbaliser = VERBALISERS.get(cfg.data.task)
    model_cfg = cfg.backbone(pretrained.cfg)
    if cfg.max_target_len > model_cfg.max_seq_len - 1:
        raise UserError(f"max_target_len={cfg.max_target_len} leaves no room for the decoder start token: "
                        f"the model's max_seq_len is {model_cfg.max_seq_len}")
    max_len = min(cfg.data.max_seq_len or model_cfg.max_seq_len, model_cfg.max_seq_len)
    tok = load_tokenizer(tok_file)
    x_train, x_valid = encode_sources(tok, train_ex.texts, max_len), encode_sources(tok, valid_ex.texts, max_len)
    y_train = encode_targets(tok, targets_of(train_ex, verbaliser), cfg.max_target_len)
    y_valid = encode_targets(tok, targets_of(valid_ex, verbaliser), cfg.max_target_len)

    torch.manual_seed(cfg.train.seed)
    model = EncoderDecoderModel(model_cfg)
    if not scratch:
        model.load_state_dict(pretrained.state_dict())
    del pretrained
    print(f"text-to-text fine-tuning of {'a randomly initialised' if scratch else 'the pre-trained'} encoder-decoder "
          f"({count_parameters(model) / 1e6:.1f}M parameters) on {len(x_train):,} pairs; validating on "
          f"{len(x_valid):,} by greedy generation (exact match)", file=sys.stderr)
    write_json(run_dir / "config.json", {"stage": "finetune", **dataclasses.asdict(cfg), "resolved": {
        "method": "text2text", "model": str(model_path), "scratch": scratch, "train_file": train_file,
        "valid_file": valid_file, "input_column": text_col, "target_column": label_col, "verbalizer": verbaliser}})

    def step_fn(model, batch, step, micro):
        loss, n, correct = seq2seq_loss(model, batch["inputs"], batch["labels"])
        n_tokens = int((batch["inputs"] != PAD).sum()) + n  # source + target tokens
        return loss, n_tokens, {"token_accuracy": round(correct / max(n, 1), 4)}

    def evaluate(model):
        return exact_match(generate_all(model, x_valid, cfg.max_target_len), y_valid)

    batches = PairBatches(x_train, y_train, cfg.train.batch_size, cfg.train.seed)
    state = train(model, batches, step_fn, cfg.train, run_dir, evaluate=evaluate, resume=resume, desc="finetune")
    results = state.last_eval()
    results.update({"steps": state.step, "train_seconds": round(state.elapsed, 1), "valid_file": valid_file,
                    "method": "text2text", "scratch": scratch, "pretrained": str(model_path)})
    save_model(model, run_dir / "model", model_meta(model, "seq2seq", stage="finetune", verbalizer=verbaliser,
                                                      results=results), tok_file)
    write_json(run_dir / "results.json", results)
    plot_loss(run_dir)
    return results
