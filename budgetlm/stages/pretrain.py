"""`budgetlm pretrain`: tokenizer (trained if not given) -> token cache -> training -> model + report.

`objective.name` picks a recipe from `RECIPES`: masked-LM for an encoder, next-token prediction for a decoder,
or a denoising objective (T5 span corruption, BART text infilling) for an encoder-decoder. A recipe builds the
model and says how to compute the loss of a block batch, how to evaluate, and what kind of model it saves;
`BLOCKS` says how each family cuts the token stream into blocks. The training loop itself is shared.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tokenizers import Tokenizer

from budgetlm.atomic import write_json
from budgetlm.config import HeadConfig, PretrainConfig
from budgetlm.data.batches import BlockBatches, BlockDataset, special_mask
from budgetlm.data.cache import build_or_load
from budgetlm.data.readers import ReadStats, read_texts
from budgetlm.data.root import english_pretraining_files, resolve_data_path, wikitext2
from budgetlm.errors import UserError
from budgetlm.models import SequenceClassificationHead, build_lm_model, build_mlm_model, build_seq2seq_model, count_parameters
from budgetlm.models.io import model_meta, save_model
from budgetlm.objectives import MASKING_FUNCTIONS, WORD_MASKINGS
from budgetlm.objectives.clm import clm_loss, document_ids, next_token_targets
from budgetlm.objectives.mlm import mlm_loss, mlm_loss_on_hidden, vocabulary_loss
from budgetlm.objectives.nsp import make_sentence_pairs, pair_loss
from budgetlm.objectives.pmi import PmiNgrams
from budgetlm.objectives.rtd import build_rtd_model, rtd_loss
from budgetlm.stages.common import prepare_run_dir
from budgetlm.objectives.clm_eval import lm_eval
from budgetlm.objectives.mlm_eval import mlm_eval, pseudo_perplexity
from budgetlm.objectives.rtd_eval import rtd_eval
from budgetlm.objectives.seq2seq import DENOISERS, add_tokens, denoising_eval, seq2seq_loss
from budgetlm.tokenizer import CLS, MASK, SPECIAL_TOKENS, TokenizerOptions, load_tokenizer, tokenizer_path, train_tokenizer
from budgetlm.train import distributed
from budgetlm.train.compile import compile_fn
from budgetlm.train.logs import plot_loss
from budgetlm.train.loop import train


def step_seed(seed: int, step: int, micro: int) -> int:
    """Masking randomness is a pure function of (seed, step, micro-batch), so resumed runs re-draw it exactly."""
    return int(np.random.SeedSequence([seed, step, micro]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------------- recipes

@dataclass
class Recipe:
    """What pre-training with one objective needs beyond the shared data pipeline and loop."""

    kind: str  # saved in the model's config.json
    model: torch.nn.Module
    # (model, batch, g) -> (loss, n, correct) or (loss, n, correct, {extra metric: value})
    loss: Callable[[torch.nn.Module, dict, torch.Generator], tuple]
    evaluate: Callable[[torch.nn.Module], dict]
    final: Callable[[torch.nn.Module], dict]  # extra figures once training is over
    accuracy_key: str  # name of the training-batch accuracy in metrics.jsonl


def _masking(cfg: PretrainConfig, tok: Tokenizer) -> Callable:
    """(ids, word_starts, g) -> (inputs, labels) with the configured masking; word_starts (B, T) or None."""
    mask_fn = MASKING_FUNCTIONS[cfg.objective.masking]
    if cfg.objective.masking == "pmi":  # the one masking with an input of its own: bind its n-gram tables
        ngrams = PmiNgrams.from_file(cfg.objective.pmi_vocab, tok)
        print(f"PMI vocabulary: {ngrams.size:,} n-grams ({ngrams.skipped:,} unusable with this tokenizer)", file=sys.stderr)
        mask_fn = functools.partial(mask_fn, ngrams=ngrams)

    def mask(ids, word_starts, g):
        return mask_fn(ids, special_mask(ids), g, cfg.objective, cfg.model.vocab_size, MASK, len(SPECIAL_TOKENS),
                       word_starts=word_starts)
    return mask


def _mlm_recipe(cfg: PretrainConfig, tok: Tokenizer, valid_set: BlockDataset) -> Recipe:
    mask = _masking(cfg, tok)
    model = build_mlm_model(cfg.model)
    task = cfg.objective.sentence_task
    if task != "none":  # NSP / SOP: a second head on [CLS], trained alongside MLM (objectives/nsp.py)
        model.heads["pair"] = SequenceClassificationHead(cfg.model, HeadConfig(), 2)

    head_loss = compile_fn(vocabulary_loss, cpu_clock=cfg.train.clock == "cpu") if cfg.train.compile else None

    def loss(model, batch, g):
        if task == "none":  # RoBERTa-style packed blocks
            return mlm_loss(model, *mask(batch["ids"], batch.get("word_starts"), g), head_loss=head_loss)
        pairs = make_sentence_pairs(batch["ids"], task, g, batch.get("word_starts"))  # [CLS] A [SEP] B [SEP]
        inputs, labels = mask(pairs["ids"], pairs["word_starts"], g)
        hidden = model.encoder(inputs, pairs["token_type_ids"])  # (B, 2L+3, D)
        mlm, n, correct = mlm_loss_on_hidden(model, hidden, labels, head_loss)
        pair, pair_correct = pair_loss(model, hidden, pairs["pair_labels"])
        return mlm + pair, n, correct, {f"{task}_accuracy": round(pair_correct / len(pairs["pair_labels"]), 4)}

    def final(m):
        if "pair" in m.heads:  # the saved model is a plain MLM model, like every other pre-training run
            del m.heads["pair"]
        return pseudo_perplexity(m, valid_set)

    return Recipe("mlm", model, loss, lambda m: mlm_eval(m, valid_set), final, "mlm_accuracy")


def _rtd_recipe(cfg: PretrainConfig, tok: Tokenizer, valid_set: BlockDataset) -> Recipe:
    """ELECTRA: the model trained is the discriminator; `model.generator` (a smaller masked-LM encoder sharing
    its token embedding) lives beside it during training, so checkpoints and --resume hold both, and is
    dropped at the end: the saved model is the bare encoder (kind 'encoder'), ready for fine-tuning."""
    mask = _masking(cfg, tok)
    obj = cfg.objective
    model = build_rtd_model(cfg.model, obj.generator_layers, obj.generator_d_ff)

    def loss(model, batch, g):
        ids = batch["ids"]
        inputs, labels = mask(ids, batch.get("word_starts"), g)
        step = rtd_loss(model, model.generator, inputs, labels, ids, ~special_mask(ids), g, obj.rtd_weight)
        return step.loss, step.scored, step.discriminator_correct, {
            "generator_accuracy": round(step.generator_correct / max(step.masked, 1), 4),
            "replaced_fraction": round(step.replaced / max(step.scored, 1), 4)}

    def final(m):
        del m.generator, m.heads["rtd"]
        return {}

    return Recipe("encoder", model, loss, lambda m: rtd_eval(m, valid_set), final, "rtd_accuracy")


def _next_token_recipe(cfg: PretrainConfig, tok: Tokenizer, valid_set: BlockDataset) -> Recipe:
    document_mask = cfg.objective.document_mask

    def loss(model, batch, g):
        inputs, labels = next_token_targets(batch["ids"])  # (B, T) each from (B, T + 1)
        return clm_loss(model, inputs, labels, document_ids(inputs) if document_mask else None)

    return Recipe("clm", build_lm_model(cfg.model), loss, lambda m: lm_eval(m, valid_set, document_mask=document_mask),
                  lambda m: {}, "next_token_accuracy")


def _denoising_recipe(cfg: PretrainConfig, tok: Tokenizer, valid_set: BlockDataset) -> Recipe:
    noise = DENOISERS[cfg.objective.name].bind(cfg.objective, tok)

    def loss(model, batch, g):
        return seq2seq_loss(model, *noise(batch["ids"], g))

    return Recipe("seq2seq", build_seq2seq_model(cfg.model), loss, lambda m: denoising_eval(m, valid_set, noise),
                  lambda m: {}, "denoising_accuracy")


RECIPES: dict[str, Callable[[PretrainConfig, Tokenizer, BlockDataset], Recipe]] = {
    "mlm": _mlm_recipe,
    "rtd": _rtd_recipe,
    "next_token": _next_token_recipe,
    "span_corruption": _denoising_recipe,
    "text_infilling": _denoising_recipe,
}

# model.family -> (first token of every block, tokens beyond model.max_seq_len per block): a decoder block holds
# T + 1 tokens so that inputs and next-token labels are both T long (data/batches.py BlockDataset)
BLOCKS: dict[str, tuple[int | None, int]] = {"encoder": (CLS, 0), "decoder": (None, 1), "encoder_decoder": (CLS, 0)}


# ----------------------------------------------------------------------------------------------- the stage

def resolve_files(cfg: PretrainConfig) -> tuple[list[str], str | None]:
    """Training files and the evaluation file (None when evaluation holds out data.valid_fraction instead)."""
    train_files = [resolve_data_path(f) for f in cfg.data.train] or [str(p) for p in english_pretraining_files()]
    if cfg.data.valid_fraction > 0:
        if cfg.data.valid:
            raise UserError("give data.valid or data.valid_fraction, not both")
        return train_files, None
    return train_files, resolve_data_path(cfg.data.valid) if cfg.data.valid else str(wikitext2("valid"))


def _tokenizer(cfg: PretrainConfig, train_files: list[str], run_dir: Path, resume: bool) -> Path:
    """The run's tokenizer.json: given, kept from the run being resumed, or trained on the training text."""
    tok_file = run_dir / "tokenizer.json"
    if resume and tok_file.exists():
        return tok_file
    if cfg.data.tokenizer:
        load_tokenizer(tokenizer_path(cfg.data.tokenizer))  # a bad file is reported under its own name
        shutil.copyfile(tokenizer_path(cfg.data.tokenizer), tok_file)
        return tok_file
    kind = cfg.data.tokenizer_kind
    print(f"training a {kind} tokenizer (up to {cfg.data.vocab_size} tokens) on the training text", file=sys.stderr)
    stats = ReadStats()
    texts = (t for f in train_files for t in read_texts(f, cfg.data.doc_split, cfg.data.text_column, stats))
    opts = TokenizerOptions(lowercase=cfg.data.lowercase, nfkc=cfg.data.lowercase)
    train_tokenizer(kind, cfg.data.vocab_size, texts, opts).save(str(tok_file))
    return tok_file


def pretrain(cfg: PretrainConfig, run_dir: str | Path, resume: bool = False) -> dict:
    run_dir = Path(run_dir)
    train_files, valid_file = resolve_files(cfg)
    given = [valid_file] if valid_file else []
    extra_inputs = [f for f in (cfg.data.tokenizer, cfg.objective.pmi_vocab) if f]
    prepare_run_dir(run_dir, resume, inputs=train_files + given + extra_inputs)

    tok_file = run_dir / "tokenizer.json"
    with distributed.main_first():  # rank 0 copies or trains it under torchrun; the others then read it
        if distributed.is_main():
            _tokenizer(cfg, train_files, run_dir, resume)
    tok = load_tokenizer(tok_file)
    if cfg.objective.name in DENOISERS and add_tokens(tok, cfg.objective) and distributed.is_main():  # T5's sentinels
        tok.save(str(tok_file))
    vocab = tok.get_vocab_size()
    if cfg.model.vocab_size == 0:
        cfg.model.vocab_size = vocab
    elif cfg.model.vocab_size < vocab:
        raise UserError(f"model.vocab_size={cfg.model.vocab_size} is smaller than the tokenizer's {vocab}")
    cfg.model.pad_token_id = 0

    cache_kw = dict(tokenizer=tok_file, cache_dir=cfg.data.cache_dir or None, doc_split=cfg.data.doc_split, text_column=cfg.data.text_column)
    needs_words = cfg.objective.name in ("mlm", "rtd") and cfg.objective.masking in WORD_MASKINGS
    with distributed.main_first():  # one rank tokenizes, the others load its cache
        train_cache = build_or_load(train_files, desc="tokenizing train", word_starts=needs_words, **cache_kw)
        start_token, extra_tokens = BLOCKS[cfg.model.family]
        block = dict(block_len=cfg.model.max_seq_len + extra_tokens, start_token=start_token)
        if valid_file:
            train_set = BlockDataset(train_cache, **block)
            valid_set = BlockDataset(build_or_load([valid_file], desc="tokenizing valid", **cache_kw), **block)
        else:  # nanoGPT-style split of one stream: the last valid_fraction of the tokens is held out
            split = int(train_cache.n_tokens * (1.0 - cfg.data.valid_fraction))
            train_set = BlockDataset(train_cache, **block, end=split)
            valid_set = BlockDataset(train_cache, **block, begin=split)
    valid_name = valid_file or f"last {cfg.data.valid_fraction:g} of the training tokens"
    if distributed.is_main():
        write_json(run_dir / "config.json", {"stage": "pretrain", **dataclasses.asdict(cfg), "resolved": {
            "train_files": train_files, "valid_file": valid_name, "train_tokens": train_cache.n_tokens,
            "train_blocks": len(train_set), "token_cache": str(train_cache.path), "ranks": distributed.world().size}})

    torch.manual_seed(cfg.train.seed)
    recipe = RECIPES[cfg.objective.name](cfg, tok, valid_set)
    model = recipe.model
    if distributed.is_main():
        print(f"{cfg.model.family} ({cfg.objective.name}): {count_parameters(model) / 1e6:.2f}M parameters; train: "
              f"{train_cache.n_tokens:,} tokens in {len(train_set):,} blocks of {block['block_len']}; budget {cfg.train.budget}",
              file=sys.stderr)

    def step_fn(model, batch, step, micro):
        ids = batch["ids"]  # (B, T)
        g = torch.Generator().manual_seed(step_seed(cfg.train.seed, step, micro))
        loss, n, correct, *extra = recipe.loss(model, batch, g)
        n_tokens = ids.numel() - ids.shape[0] * extra_tokens  # a decoder block's last token is only a label
        return loss, n_tokens, {recipe.accuracy_key: round(correct / max(n, 1), 4), **(extra[0] if extra else {})}

    batches = BlockBatches(train_set, cfg.train.batch_size, cfg.train.seed)
    state = train(model, batches, step_fn, cfg.train, run_dir, evaluate=recipe.evaluate, resume=resume, desc="pretrain")

    results = state.last_eval()
    if not distributed.is_main():  # rank 0 reports for the whole process group
        return results
    model.eval()
    results.update(recipe.final(model))
    results.update({
        "steps": state.step, "train_tokens": state.tokens, "train_seconds": round(state.elapsed, 1),
        "tokens_per_s": round(state.tokens / max(state.elapsed, 1e-9), 1), "valid_file": valid_name,
        "parameters": count_parameters(model),
    })
    save_model(model, run_dir / "model", model_meta(model, recipe.kind, stage="pretrain", results=results), tok_file)
    write_json(run_dir / "results.json", results)
    plot_loss(run_dir)
    return results
