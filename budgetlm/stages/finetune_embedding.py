"""`budgetlm finetune --task-type embedding` (or `--task stsb`): train a sentence-embedding model.

Inputs: the training file (`--train`, any format data/pairs.py reads) plus `embedding.pairs`; validation and
test are STS-scored files evaluated as Spearman x100 of cosine similarity. With `embedding.teacher`, the
teacher embeds every training sentence (plus `embedding.distill_files`) once, and the student learns to match.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch

from budgetlm.atomic import write_json
from budgetlm.config import FinetuneConfig
from budgetlm.data.pairs import read_pair_file, read_scored_pairs
from budgetlm.data.readers import ReadStats, read_texts
from budgetlm.data.root import in_root
from budgetlm.errors import UserError
from budgetlm.models import EmbeddingHead, Model, count_parameters
from budgetlm.models.io import model_meta, save_model
from budgetlm.stages.common import load_any_model, prepare_run_dir
from budgetlm.tasks.embedding import (
    EmbeddingBatches, build_embedding_data, embed, embedding_step, encode_ids, sts_spearman,
)
from budgetlm.tokenizer import load_tokenizer
from budgetlm.train.logs import plot_loss
from budgetlm.train.loop import train

# built-in embedding tasks: (train, valid, test) in the data root
EMBEDDING_TASKS = {"stsb": (("stsb", "sts-train.csv"), ("stsb", "sts-dev.csv"), ("stsb", "sts-test.csv"))}
# names usable in embedding.pairs / embedding.distill_files instead of a path: training files in the data root
NAMED_FILES = {"stsb": ("stsb", "sts-train.csv"), "mrpc": ("mrpc", "msr_paraphrase_train.txt"), "sst2": ("sst2", "train.tsv")}


def _named(files: list[str]) -> list[str]:
    return [str(in_root(*NAMED_FILES[f])) if f in NAMED_FILES else f for f in files]


def resolve_embedding_files(cfg: FinetuneConfig) -> tuple[str, str, str]:
    """(train, valid, test); test may be '' (no final test evaluation)."""
    if cfg.data.task:
        if cfg.data.task not in EMBEDDING_TASKS:
            raise UserError(f"--task {cfg.data.task!r} is not an embedding task; embedding tasks: {', '.join(EMBEDDING_TASKS)}")
        train_f, valid_f, test_f = (str(in_root(*parts)) for parts in EMBEDDING_TASKS[cfg.data.task])
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


def finetune_embedding(cfg: FinetuneConfig, model_path: str | Path, run_dir: str | Path, resume: bool = False,
                       scratch: bool = False, trust_pickle: bool = False) -> dict:
    emb = cfg.embedding
    run_dir = Path(run_dir)
    if cfg.train.threads:  # before the teacher runs, not only in the loop
        torch.set_num_threads(cfg.train.threads)
    train_file, valid_file, test_file = resolve_embedding_files(cfg)
    pair_files, distill_files = _named(emb.pairs), _named(emb.distill_files)
    prepare_run_dir(run_dir, resume, inputs=embedding_input_files(cfg))

    # read everything before loading models: bad input fails in a second
    sources = [read_pair_file(f, emb.min_score) for f in [train_file, *pair_files]]
    valid, test = read_scored_pairs(valid_file), (read_scored_pairs(test_file) if test_file else None)
    extra = [t.strip() for f in distill_files for t in read_texts(f, "line", cfg.data.text_column, ReadStats()) if t.strip()]
    print("task type: embedding", file=sys.stderr)
    for src in sources:
        print(f"{src.path}: {src.describe()}", file=sys.stderr)

    pretrained, meta, tok_file = load_any_model(model_path, trust_pickle)
    if pretrained.cfg.family != "encoder":
        raise UserError(f"sentence embeddings need an encoder; this model is an {pretrained.cfg.family} "
                        f"(kind {meta.get('kind')})", path=str(model_path))
    model_cfg = cfg.backbone(pretrained.cfg)
    if any(src.sentences for src in sources) and emb.contrastive_weight > 0 and model_cfg.dropout == 0:
        print("warning: SimCSE pairs need dropout, and the model's is 0; set dropout=0.1", file=sys.stderr)
    max_len = min(cfg.data.max_seq_len or model_cfg.max_seq_len, model_cfg.max_seq_len)
    tok = load_tokenizer(tok_file)
    data = build_embedding_data(sources, tok, max_len, extra if emb.teacher else [])

    teacher_info = {}
    if emb.teacher:
        from budgetlm.tasks.teacher import Teacher, cached_teacher_embeddings

        t0 = time.perf_counter()
        teacher = Teacher(emb.teacher, precision=cfg.train.precision)  # the student's arithmetic
        out_dim = emb.dim or model_cfg.d_model
        # (losses that compare student and teacher vectors directly: they need the same size, option to turn it off)
        for used, option, off in ((emb.distill_loss == "mse", "embedding.distill_loss=mse", "embedding.distill_loss=similarity"),
                                  (emb.distill_contrastive_weight > 0, "embedding.distill_contrastive_weight",
                                   "embedding.distill_contrastive_weight=0")):
            if used and out_dim != teacher.dim:
                raise UserError(f"{option} compares {out_dim}-d student and {teacher.dim}-d teacher embeddings; "
                                f"set embedding.dim={teacher.dim} or {off}")
        data.distill = list(range(len(data.texts)))
        data.teacher = cached_teacher_embeddings(teacher, data.texts)
        teacher_info = {"teacher": str(teacher.path), "teacher_sentences": len(data.texts),
                        "teacher_seconds": round(time.perf_counter() - t0, 1)}
        del teacher

    torch.manual_seed(cfg.train.seed)
    model = Model(model_cfg, {"embed": EmbeddingHead(model_cfg, emb.pooling, emb.dim)})
    if not scratch:
        model.encoder.load_state_dict(pretrained.encoder.state_dict())
        print(continue_head(model.heads["embed"], pretrained), file=sys.stderr)
    del pretrained
    weights = {"scored": emb.regression_weight if emb.regression != "none" else 0.0, "pairs": emb.contrastive_weight,
               "simcse": emb.contrastive_weight, "distill": emb.distill_weight}
    batches = EmbeddingBatches(data, cfg.train.batch_size, cfg.train.seed, weights, cfg.data.group_by_length)
    if not batches.samplers:
        raise UserError("nothing to train on: every loss with data has weight 0 (or regression=none)")
    used = ", ".join(f"{name} {data.sizes()[name]:,}" for name in batches.samplers)
    print(f"training {'a randomly initialised' if scratch else 'the pre-trained'} encoder "
          f"({count_parameters(model) / 1e6:.1f}M parameters) for sentence embeddings on: {used}; "
          f"validating on {len(valid):,} STS pairs", file=sys.stderr)
    write_json(run_dir / "config.json", {"stage": "finetune", **dataclasses.asdict(cfg), "resolved": {
        "task_type": "embedding", "model": str(model_path), "scratch": scratch, "train_file": train_file,
        "valid_file": valid_file, "test_file": test_file, "components": data.sizes(), **teacher_info}})

    def step_fn(model, batch, step, micro):
        return embedding_step(model, batch, emb)

    def evaluate(model):
        return {"spearman": round(sts_spearman(model, tok, valid, max_len), 2)}

    state = train(model, batches, step_fn, cfg.train, run_dir, evaluate=evaluate, resume=resume, desc="finetune")
    results = state.last_eval()
    if test is not None:
        results["test_spearman"] = round(sts_spearman(model, tok, test, max_len), 2)
        results["test_file"] = test_file
    if emb.remove_top_pcs:  # after the plain figures, which stay in results as *_raw
        from budgetlm.tasks.embedding_postprocess import fit_all_but_the_top

        raw = {f"{k}_raw": results[k] for k in ("spearman", "test_spearman") if k in results}
        post = fit_all_but_the_top(model, lambda texts: embed(model, encode_ids(tok, texts, max_len)).numpy(),
                                   data.texts, valid, emb.remove_top_pcs)
        results.update(raw, **post, spearman=evaluate(model)["spearman"])
        if test is not None:
            results["test_spearman"] = round(sts_spearman(model, tok, test, max_len), 2)
        print(f"all-but-the-top: removed {post['remove_top_pcs']} direction(s); dev Spearman "
              f"{raw['spearman_raw']} -> {results['spearman']}", file=sys.stderr)
    results.update({"steps": state.step, "train_seconds": round(state.elapsed, 1), "valid_file": valid_file,
                    "scratch": scratch, "pretrained": str(model_path), **teacher_info})
    head = model.heads["embed"]
    save_model(model, run_dir / "model", model_meta(model, "embedder", embedding={"pooling": emb.pooling, "dim": emb.dim,
                                                                                   "top_pcs": head.top_pcs},
                                                      stage="finetune", results=results), tok_file)
    write_json(run_dir / "results.json", results)
    plot_loss(run_dir)
    return results
