"""`budgetlm embed` (texts -> .npy of sentence embeddings) and `budgetlm similar` (nearest texts to a query).

Any model loads: an embedding model from `finetune --task-type embedding` uses its own pooling; others
(a pre-trained MLM, an imported transformers encoder) are mean-pooled. Embeddings are L2-normalised, so a dot
product is the cosine similarity.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from budgetlm.atomic import check_output_file, replacing
from budgetlm.data.readers import TEXT_SUFFIXES, ReadStats, check_input_file, iter_lines, read_texts
from budgetlm.errors import UserError
from budgetlm.models.load import load
from budgetlm.tasks.embedding import embed, encode_ids
from budgetlm.tokenizer import load_tokenizer


def read_lines(path: str | Path, text_column: str = "") -> list[str]:
    """One text per line of a .txt file, or the text column of a .tsv/.csv/.jsonl file; empty lines skipped.

    A line over 1 MiB is refused rather than read in pieces: each piece would become a row of its own, and
    the rows would no longer match the lines (the model sees only its first max_seq_len tokens anyway)."""
    stats = ReadStats()
    p = check_input_file(path)
    if p.suffix.lower() in TEXT_SUFFIXES:
        texts = []
        with open(p, "rb") as f:
            for line_no, text, complete in iter_lines(f, p, stats):
                if not complete:
                    raise UserError("line is too long (over 1 MiB) to embed as one text", path=str(p), line=line_no)
                if text.strip():
                    texts.append(text.strip())
    else:
        texts = [t.strip() for t in read_texts(p, "line", text_column, stats) if t.strip()]
    stats.warn()
    if not texts:
        raise UserError("no texts found", path=str(path))
    return texts


def load_embedder(model_path: str | Path, trust_pickle: bool = False):
    model, meta, tok_file = load(model_path, trust_pickle)
    if model.cfg.family != "encoder":
        raise UserError(f"sentence embeddings need an encoder; this model is an {model.cfg.family} "
                        f"(kind {meta.get('kind')})", path=str(model_path))
    model.eval()
    return model, load_tokenizer(tok_file)


def embed_texts(model_path: str | Path, texts: list[str], batch_size: int = 64, progress: bool = True,
                trust_pickle: bool = False) -> np.ndarray:
    model, tok = load_embedder(model_path, trust_pickle)
    return embed(model, encode_ids(tok, texts, model.cfg.max_seq_len), batch_size, progress=progress).numpy()


def embed_file(model_path: str | Path, file: str | Path, out: str | Path, text_column: str = "", batch_size: int = 64,
               trust_pickle: bool = False) -> tuple[Path, tuple]:
    out = Path(out)
    if out.suffix != ".npy":
        raise UserError("--out must end in .npy", path=str(out))
    check_output_file(out, "give a file name ending in .npy")
    texts = read_lines(file, text_column)
    vectors = embed_texts(model_path, texts, batch_size, trust_pickle=trust_pickle)
    try:
        with replacing(out) as tmp:
            np.save(tmp, vectors.astype(np.float32))
    except OSError as e:
        raise UserError(f"cannot write the embeddings ({e.strerror})", path=str(out)) from None
    return out, vectors.shape


def similar(model_path: str | Path, query: str, file: str | Path, top_k: int = 5, text_column: str = "",
            batch_size: int = 64, trust_pickle: bool = False) -> list[tuple[float, str]]:
    """The `top_k` texts of `file` closest to `query` by cosine similarity, best first."""
    if not query.strip():
        raise UserError("the query is empty")
    if top_k < 1:
        raise UserError("--top-k must be >= 1")
    texts = read_lines(file, text_column)
    model, tok = load_embedder(model_path, trust_pickle)
    max_len = model.cfg.max_seq_len
    vectors = embed(model, encode_ids(tok, texts, max_len), batch_size, progress=len(texts) > 1000)
    q = embed(model, encode_ids(tok, [query], max_len))[0]
    scores = vectors @ q  # (N,)
    best = scores.argsort(descending=True)[:top_k].tolist()
    if len(texts) < top_k:
        print(f"note: {file} has only {len(texts)} texts", file=sys.stderr)
    return [(float(scores[i]), texts[i]) for i in best]


def evaluate_sts(model_path: str | Path, file: str | Path, batch_size: int = 64, trust_pickle: bool = False) -> dict:
    """STS Spearman x100 of cosine similarity of any model (embedding model, encoder, transformers dir) on
    an STS-scored file, without training: the `stsb` row of an evaluation report."""
    from budgetlm.data.pairs import read_scored_pairs
    from budgetlm.tasks.embedding import spearman_of_cosines

    pairs = read_scored_pairs(file)
    model, tok = load_embedder(model_path, trust_pickle)
    max_len = model.cfg.max_seq_len
    a = embed(model, encode_ids(tok, [p[0] for p in pairs], max_len), batch_size, progress=True)
    b = embed(model, encode_ids(tok, [p[1] for p in pairs], max_len), batch_size, progress=True)
    return {"spearman": round(spearman_of_cosines(a, b, [p[2] for p in pairs]), 2), "pairs": len(pairs), "file": str(file)}
