"""The embedding method of `budgetlm finetune` (task type embedding: `--task-type embedding` or `--task stsb`):
train a sentence-embedding model through the stage skeleton.

Inputs: the training file (`--train`, any format data/pairs.py reads) plus `embedding.pairs`; validation and
test are STS-scored files evaluated as Spearman x100 of cosine similarity. With `embedding.teacher`, the
teacher embeds every training sentence (plus `embedding.distill_files`) once, and the student learns to match.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from budgetlm.data.pairs import read_pair_file, read_scored_pairs
from budgetlm.data.readers import ReadStats, read_texts
from budgetlm.data.root import in_root
from budgetlm.errors import UserError
from budgetlm.models import EmbeddingHead, Model, count_parameters
from budgetlm.stages.common import prepare_run_dir
from budgetlm.stages.config import FinetuneConfig
from budgetlm.stages.method import Start
from budgetlm.stages.skeleton import Recipe, run
from budgetlm.tasks.embedding import (
    EmbeddingBatches, EmbeddingData, build_embedding_data, embed, embedding_step, encode_ids, sts_spearman,
)
from budgetlm.tasks.registry import BUILTIN_TASKS
from budgetlm.tokenizer import load_tokenizer

FAMILIES = ("encoder",)
MAIN_METRIC = "spearman"  # the validation figure a run is judged by (train.keep_best=main, --search)

# names usable in embedding.pairs / embedding.distill_files instead of a path: training files in the data root
NAMED_FILES = {"stsb": ("stsb", "sts-train.csv"), "mrpc": ("mrpc", "msr_paraphrase_train.txt"), "sst2": ("sst2", "train.tsv")}


def _named(files: list[str]) -> list[str]:
    return [str(in_root(*NAMED_FILES[f])) if f in NAMED_FILES else f for f in files]


def resolve_embedding_files(cfg: FinetuneConfig) -> tuple[str, str, str]:
    """(train, valid, test); test may be '' (no final test evaluation)."""
    if cfg.data.task:
        task = BUILTIN_TASKS.get(cfg.data.task)
        if task is None or task.task_type != "embedding":
            names = [name for name, t in BUILTIN_TASKS.items() if t.task_type == "embedding"]
            raise UserError(f"--task {cfg.data.task!r} is not an embedding task; embedding tasks: {', '.join(names)}")
        train_f, valid_f, test_f = (str(in_root(*parts)) for parts in (task.train, task.valid, task.test))
        return cfg.data.train or train_f, cfg.data.valid or valid_f, cfg.embedding.test or cfg.data.test or test_f
    if not cfg.data.train or not cfg.data.valid:
        raise UserError("embedding training needs --task stsb, or --train FILE and --valid STS_FILE")
    return cfg.data.train, cfg.data.valid, cfg.embedding.test or cfg.data.test


def embedding_input_files(cfg: FinetuneConfig) -> list[str]:
    """Every file an embedding run reads: train, valid, embedding.pairs, embedding.distill_files, test."""
    train_file, valid_file, test_file = resolve_embedding_files(cfg)
    files = [train_file, valid_file, *_named(cfg.embedding.pairs), *_named(cfg.embedding.distill_files)]
    return files + ([test_file] if test_file else [])


def continue_head(head: EmbeddingHead, pretrained: Model) -> str:
    """Start `head`'s projection from the pre-trained model's when that model is an embedding model with the same
    pooling, activation and projection shape (continued training, e.g. a second distillation stage); otherwise the
    projection keeps its fresh initialisation. All-but-the-top is never carried over: it is refitted after
    training. Returns a line saying which happened."""
    old = pretrained.heads["embed"] if "embed" in pretrained.heads else None
    if head.proj is None:
        return "embedding head: pooling only, nothing to carry over"
    if not isinstance(old, EmbeddingHead) or old.proj is None:
        return "embedding head: a new projection (the model has none)"
    same = (old.pooling, old.activation, tuple(old.proj.weight.shape)) == \
           (head.pooling, head.activation, tuple(head.proj.weight.shape))
    if not same:
        return (f"embedding head: a new projection (the model's is {old.pooling} pooling, {old.activation}, "
                f"{old.proj.in_features}->{old.proj.out_features}; this run's {head.pooling} pooling, {head.activation}, "
                f"{head.proj.in_features}->{head.proj.out_features})")
    head.proj.load_state_dict(old.proj.state_dict())
    return f"embedding head: continuing from the model's projection ({head.pooling} pooling -> {head.proj.out_features})"


def _read_inputs(cfg: FinetuneConfig):
    """(training sources, valid pairs, test pairs or None, distillation-only sentences, (train, valid, test) files).
    Everything is read before any model is loaded: bad input fails in a second."""
    emb = cfg.embedding
    train_file, valid_file, test_file = resolve_embedding_files(cfg)
    pair_files, distill_files = _named(emb.pairs), _named(emb.distill_files)
    sources = [read_pair_file(f, emb.min_score) for f in [train_file, *pair_files]]
    valid, test = read_scored_pairs(valid_file), (read_scored_pairs(test_file) if test_file else None)
    extra = [t.strip() for f in distill_files for t in read_texts(f, "line", cfg.data.text_column, ReadStats()) if t.strip()]
    print("task type: embedding", file=sys.stderr)
    for src in sources:
        print(f"{src.path}: {src.describe()}", file=sys.stderr)
    return sources, valid, test, extra, (train_file, valid_file, test_file)


def _load_encoder(start: Start):
    pretrained, meta, tok_file = start.load()
    if pretrained.cfg.family not in FAMILIES:
        raise UserError(f"sentence embeddings need an encoder; this model is an {pretrained.cfg.family} "
                        f"(kind {meta.get('kind')})", path=str(start.path))
    return pretrained, tok_file


def _distill(cfg: FinetuneConfig, data: EmbeddingData, out_dim: int) -> dict:
    """The teacher's embeddings of every training sentence into `data` (cached); returns what to report."""
    from budgetlm.tasks.teacher import Teacher, cached_teacher_embeddings

    emb = cfg.embedding
    t0 = time.perf_counter()
    teacher = Teacher(emb.teacher, precision=cfg.train.precision)  # the student's arithmetic
    # (losses that compare student and teacher vectors directly: they need the same size, option to turn it off)
    for used, option, off in ((emb.distill_loss == "mse", "embedding.distill_loss=mse", "embedding.distill_loss=similarity"),
                              (emb.distill_contrastive_weight > 0, "embedding.distill_contrastive_weight",
                               "embedding.distill_contrastive_weight=0")):
        if used and out_dim != teacher.dim:
            raise UserError(f"{option} compares {out_dim}-d student and {teacher.dim}-d teacher embeddings; "
                            f"set embedding.dim={teacher.dim} or {off}")
    data.distill = list(range(len(data.texts)))
    data.teacher = cached_teacher_embeddings(teacher, data.texts)
    return {"teacher": str(teacher.path), "teacher_sentences": len(data.texts),
            "teacher_seconds": round(time.perf_counter() - t0, 1)}


def finetune_embedding(cfg: FinetuneConfig, start: Start, run_dir: Path, resume: bool, scratch: bool) -> dict:
    emb = cfg.embedding
    if cfg.train.threads:  # before the teacher runs, not only in the loop
        torch.set_num_threads(cfg.train.threads)
    resume = prepare_run_dir(run_dir, resume, inputs=embedding_input_files(cfg))
    sources, valid, test, extra, (train_file, valid_file, test_file) = _read_inputs(cfg)
    pretrained, tok_file = _load_encoder(start)
    model_cfg = cfg.backbone(pretrained.cfg)
    del pretrained
    if any(src.sentences for src in sources) and emb.contrastive_weight > 0 and model_cfg.dropout == 0:
        print("warning: SimCSE pairs need dropout, and the model's is 0; set dropout=0.1", file=sys.stderr)
    max_len = min(cfg.data.max_seq_len or model_cfg.max_seq_len, model_cfg.max_seq_len)
    tok = load_tokenizer(tok_file)
    data = build_embedding_data(sources, tok, max_len, extra if emb.teacher else [])
    teacher_info = _distill(cfg, data, emb.dim or model_cfg.d_model) if emb.teacher else {}
    weights = {"scored": emb.regression_weight if emb.regression != "none" else 0.0, "pairs": emb.contrastive_weight,
               "simcse": emb.contrastive_weight, "distill": emb.distill_weight}
    batches = EmbeddingBatches(data, cfg.train.batch_size, cfg.train.seed, weights, cfg.data.group_by_length)

    def build():
        model = Model(model_cfg, {"embed": EmbeddingHead(model_cfg, emb.pooling, emb.dim)})
        if not scratch:
            model.encoder.load_state_dict(start.load()[0].encoder.state_dict())
            print(continue_head(model.heads["embed"], start.load()[0]), file=sys.stderr)
        start.release()
        if not batches.samplers:
            raise UserError("nothing to train on: every loss with data has weight 0 (or regression=none)")
        return model

    def describe(model) -> str:
        used = ", ".join(f"{name} {data.sizes()[name]:,}" for name in batches.samplers)
        return (f"training {'a randomly initialised' if scratch else 'the pre-trained'} encoder "
                f"({count_parameters(model) / 1e6:.1f}M parameters) for sentence embeddings on: {used}; "
                f"validating on {len(valid):,} STS pairs")

    def evaluate(model):
        return {MAIN_METRIC: round(sts_spearman(model, tok, valid, max_len), 2)}

    def final(model, results) -> dict:
        return _final_figures(model, results, tok, max_len, data, valid, test, test_file, emb, evaluate)

    resolved = {"task_type": "embedding", "model": str(start.path), "scratch": scratch, "train_file": train_file,
                "valid_file": valid_file, "test_file": test_file, "components": data.sizes(), **teacher_info}
    report = {"valid_file": valid_file, "scratch": scratch, "pretrained": str(start.path), **teacher_info}
    recipe = Recipe("finetune", cfg, resolved, build, describe, lambda model, batch, step, micro: embedding_step(model, batch, emb),
                    batches, evaluate, "embedder", tok_file, final=final, report=lambda model, state: report,
                    meta=lambda model: {"embedding": {"pooling": emb.pooling, "dim": emb.dim,
                                                      "top_pcs": model.heads["embed"].top_pcs}},
                    # every step draws a batch of each component: a pass is one over the largest
                    epoch_examples=max((data.sizes()[name] for name in batches.samplers), default=0),
                    main_metric=MAIN_METRIC)
    return run(recipe, cfg.train, run_dir, resume=resume)


def _final_figures(model, results: dict, tok, max_len: int, data: EmbeddingData, valid, test, test_file: str, emb,
                   evaluate) -> dict:
    """Test Spearman; with embedding.remove_top_pcs, all-but-the-top fitted now and the figures again after it
    (the plain ones stay as *_raw)."""
    results = dict(results)
    if test is not None:
        results["test_spearman"] = round(sts_spearman(model, tok, test, max_len), 2)
        results["test_file"] = test_file
    if emb.remove_top_pcs:
        from budgetlm.tasks.embedding_postprocess import fit_all_but_the_top

        raw = {f"{k}_raw": results[k] for k in ("spearman", "test_spearman") if k in results}
        post = fit_all_but_the_top(model, lambda texts: embed(model, encode_ids(tok, texts, max_len)).numpy(),
                                   data.texts, valid, emb.remove_top_pcs)
        results.update(raw, **post, spearman=evaluate(model)["spearman"])
        if test is not None:
            results["test_spearman"] = round(sts_spearman(model, tok, test, max_len), 2)
        print(f"all-but-the-top: removed {post['remove_top_pcs']} direction(s); dev Spearman "
              f"{raw['spearman_raw']} -> {results['spearman']}", file=sys.stderr)
    return results
