"""The text2text method of `budgetlm finetune`, for an encoder-decoder: train on (input, target) text pairs,
evaluate by generating.

Built-in classification tasks are verbalised (SST-2: "sentence -> positive/negative"); any TSV/CSV/JSONL with
input and target columns works as it is. The one training loop runs it; evaluation decodes greedily with
the KV cache and reports exact match on the validation file.
"""

from __future__ import annotations

from pathlib import Path

from budgetlm.data.batches import PairBatches
from budgetlm.errors import UserError
from budgetlm.models import EncoderDecoderModel, count_parameters
from budgetlm.objectives.seq2seq import seq2seq_loss
from budgetlm.stages.common import prepare_run_dir
from budgetlm.stages.config import FinetuneConfig
from budgetlm.stages.method import Start, check_family, single_task_files
from budgetlm.stages.skeleton import Recipe, run
from budgetlm.tasks.classification import read_examples
from budgetlm.tasks.registry import VERBALISERS
from budgetlm.tasks.text2text import (
    default_columns, encode_sources, encode_targets, exact_match, generate_all, targets_of,
)
from budgetlm.tokenizer import PAD, load_tokenizer

FAMILIES = ("encoder_decoder",)
MAIN_METRIC = "exact_match"  # the validation figure a run is judged by (train.keep_best=main, --search)


def text2text_input_files(cfg: FinetuneConfig) -> list[str]:
    return list(single_task_files(cfg, "text2text")[:2])


def finetune_text2text(cfg: FinetuneConfig, start: Start, run_dir: Path, resume: bool, scratch: bool) -> dict:
    check_family("text2text", FAMILIES, start)
    train_file, valid_file, text_col, label_col, header = single_task_files(cfg, "text2text")
    resume = prepare_run_dir(run_dir, resume, inputs=[train_file, valid_file])
    pretrained, _, tok_file = start.load()
    if header is None:
        text_col, label_col = default_columns(train_file, text_col, label_col)
    train_ex = read_examples(train_file, text_col, label_col, header)
    valid_ex = read_examples(valid_file, text_col, label_col, header)
    verbaliser = VERBALISERS.get(cfg.data.task)
    model_cfg = cfg.backbone(pretrained.cfg)
    del pretrained
    if cfg.max_target_len > model_cfg.max_seq_len - 1:
        raise UserError(f"max_target_len={cfg.max_target_len} leaves no room for the decoder start token: "
                        f"the model's max_seq_len is {model_cfg.max_seq_len}")
    max_len = min(cfg.data.max_seq_len or model_cfg.max_seq_len, model_cfg.max_seq_len)
    tok = load_tokenizer(tok_file)
    x_train, x_valid = encode_sources(tok, train_ex.texts, max_len), encode_sources(tok, valid_ex.texts, max_len)
    y_train = encode_targets(tok, targets_of(train_ex, verbaliser), cfg.max_target_len)
    y_valid = encode_targets(tok, targets_of(valid_ex, verbaliser), cfg.max_target_len)

    def build():
        model = EncoderDecoderModel(model_cfg)
        if not scratch:
            model.load_state_dict(start.load()[0].state_dict())
        start.release()
        return model

    def describe(model) -> str:
        return (f"text-to-text fine-tuning of {'a randomly initialised' if scratch else 'the pre-trained'} "
                f"encoder-decoder ({count_parameters(model) / 1e6:.1f}M parameters) on {len(x_train):,} pairs; "
                f"validating on {len(x_valid):,} by greedy generation (exact match)")

    def step_fn(model, batch, step, micro):
        loss, n, correct = seq2seq_loss(model, batch["inputs"], batch["labels"])
        n_tokens = int((batch["inputs"] != PAD).sum()) + n  # source + target tokens
        return loss, n_tokens, {"token_accuracy": round(correct / max(n, 1), 4)}

    def evaluate(model):
        return exact_match(generate_all(model, x_valid, cfg.max_target_len), y_valid)

    resolved = {"method": "text2text", "model": str(start.path), "scratch": scratch, "train_file": train_file,
                "valid_file": valid_file, "input_column": text_col, "target_column": label_col, "verbalizer": verbaliser}
    report = {"valid_file": valid_file, "method": "text2text", "scratch": scratch, "pretrained": str(start.path)}
    recipe = Recipe("finetune", cfg, resolved, build, describe, step_fn,
                    PairBatches(x_train, y_train, cfg.train.batch_size, cfg.train.seed), evaluate, "seq2seq", tok_file,
                    report=lambda model, state: report, meta=lambda model: {"verbalizer": verbaliser},
                    epoch_examples=len(x_train), main_metric=MAIN_METRIC)
    return run(recipe, cfg.train, run_dir, resume=resume)
