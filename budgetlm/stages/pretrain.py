"""`budgetlm pretrain`: tokenizer (trained if not given) -> token cache -> training -> model + report.

`objective.name` picks a recipe from `RECIPES`: masked-LM or ELECTRA for an encoder, next-token prediction for a
decoder, or a denoising objective (T5 span corruption, BART text infilling) for an encoder-decoder. A recipe
(objectives/*_recipe.py) builds the model and says how to compute the loss of a block batch, how to evaluate,
and what kind of model it saves; `BLOCKS` says how each family cuts the token stream into blocks. The stage
skeleton (stages/skeleton.py) and the training loop are shared.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tokenizers import Tokenizer

from budgetlm import runtime
from budgetlm.data.batches import BlockBatches, BlockDataset
from budgetlm.data.cache import build_or_load
from budgetlm.data.readers import ReadStats, read_texts
from budgetlm.data.root import english_pretraining_files, resolve_data_path, resolve_data_paths, wikitext2
from budgetlm.errors import UserError
from budgetlm.models import count_parameters
from budgetlm.objectives import WORD_MASKINGS
from budgetlm.objectives.clm_recipe import next_token_recipe
from budgetlm.objectives.denoising_recipe import denoising_recipe
from budgetlm.objectives.mlm_recipe import mlm_recipe
from budgetlm.objectives.recipe import ObjectiveRecipe
from budgetlm.objectives.rtd_recipe import rtd_recipe
from budgetlm.objectives.seq2seq import DENOISERS, add_tokens
from budgetlm.stages.common import prepare_run_dir
from budgetlm.stages.config import PretrainConfig
from budgetlm.stages.skeleton import Recipe, run
from budgetlm.tokenizer import CLS, TokenizerOptions, load_tokenizer, tokenizer_path, train_tokenizer
from budgetlm.train import distributed


def step_seed(seed: int, step: int, micro: int) -> int:
    """Masking randomness is a pure function of (seed, step, micro-batch), so resumed runs re-draw it exactly."""
    return int(np.random.SeedSequence([seed, step, micro]).generate_state(1)[0])


# objective.name -> (cfg, tokenizer, validation blocks) -> ObjectiveRecipe; each builder lives beside its objective
RECIPES: dict[str, Callable[[PretrainConfig, Tokenizer, BlockDataset], ObjectiveRecipe]] = {
    "mlm": mlm_recipe,
    "rtd": rtd_recipe,
    "next_token": next_token_recipe,
    "span_corruption": denoising_recipe,
    "text_infilling": denoising_recipe,
}

# model.family -> (first token of every block, tokens beyond model.max_seq_len per block): a decoder block holds
# T + 1 tokens so that inputs and next-token labels are both T long (data/batches.py BlockDataset)
BLOCKS: dict[str, tuple[int | None, int]] = {"encoder": (CLS, 0), "decoder": (None, 1), "encoder_decoder": (CLS, 0)}


# ----------------------------------------------------------------------------------------------- the stage

def resolve_files(cfg: PretrainConfig) -> tuple[list[str], str | None]:
    """Training files and the evaluation file (None when evaluation holds out data.valid_fraction instead)."""
    train_files = [p for f in cfg.data.train for p in resolve_data_paths(f)] or [str(p) for p in english_pretraining_files()]
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


def _run_tokenizer(cfg: PretrainConfig, train_files: list[str], run_dir: Path, resume: bool) -> tuple[Tokenizer, Path]:
    """The run's tokenizer (with the objective's added tokens) and its file; sets model.vocab_size when unset."""
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
    return tok, tok_file


def _block_sets(cfg: PretrainConfig, train_files: list[str], valid_file: str | None, tok_file: Path):
    """(token cache of the training text, training blocks, validation blocks)."""
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
    return train_cache, train_set, valid_set


def pretrain(cfg: PretrainConfig, run_dir: str | Path, resume: bool = False) -> dict:
    runtime.resolve(cfg.train, cfg.model)  # bf16, compiler, memory: refused or resolved before any work
    run_dir = Path(run_dir)
    train_files, valid_file = resolve_files(cfg)
    given = [valid_file] if valid_file else []
    extra_inputs = [f for f in (cfg.data.tokenizer, cfg.objective.pmi_vocab) if f]
    resume = prepare_run_dir(run_dir, resume, inputs=train_files + given + extra_inputs)
    tok, tok_file = _run_tokenizer(cfg, train_files, run_dir, resume)
    train_cache, train_set, valid_set = _block_sets(cfg, train_files, valid_file, tok_file)
    valid_name = valid_file or f"last {cfg.data.valid_fraction:g} of the training tokens"
    resolved = {"train_files": train_files, "valid_file": valid_name, "train_tokens": train_cache.n_tokens,
                "train_blocks": len(train_set), "token_cache": str(train_cache.path), "ranks": distributed.world().size}
    objective = RECIPES[cfg.objective.name](cfg, tok, valid_set)
    extra_tokens = BLOCKS[cfg.model.family][1]

    def describe(model) -> str:
        return (f"{cfg.model.family} ({cfg.objective.name}): {count_parameters(model) / 1e6:.2f}M parameters; train: "
                f"{train_cache.n_tokens:,} tokens in {len(train_set):,} blocks of {train_set.block_len}; "
                f"budget {cfg.train.budget}")

    def step_fn(model, batch, step, micro):
        ids = batch["ids"]  # (B, T)
        g = torch.Generator().manual_seed(step_seed(cfg.train.seed, step, micro))
        loss, n, correct, *extra = objective.loss(model, batch, g)
        n_tokens = ids.numel() - ids.shape[0] * extra_tokens  # a decoder block's last token is only a label
        return loss, n_tokens, {objective.accuracy_key: round(correct / max(n, 1), 4), **(extra[0] if extra else {})}

    def final(model, results) -> dict:
        model.eval()
        return objective.final(model)

    def report(model, state) -> dict:
        return {"train_tokens": state.tokens, "tokens_per_s": round(state.tokens / max(state.elapsed, 1e-9), 1),
                "valid_file": valid_name, "parameters": count_parameters(model)}

    recipe = Recipe("pretrain", cfg, resolved, objective.build, describe, step_fn,
                    BlockBatches(train_set, cfg.train.batch_size, cfg.train.seed), objective.evaluate, objective.kind,
                    tok_file, final=final, report=report, epoch_examples=len(train_set))
    return run(recipe, cfg.train, run_dir, resume=resume)
