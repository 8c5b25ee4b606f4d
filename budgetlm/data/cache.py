"""Packed token cache: encode a corpus once, store it as numpy memmap shards, reuse it on the next run.

Layout of one cache entry, `<cache_dir>/<key>/`:
    meta.json            key inputs, dtype, tokens per shard, documents, replaced bytes
    shard_00000.bin ...  one flat stream of token ids: doc1 [SEP] doc2 [SEP] ...  (uint16 if the vocab fits)
The key is a hash of the tokenizer file, the content of every input file and the reading settings, so
changing any of them builds a new entry. An entry is built in a temporary directory and renamed into
place, so a killed build never leaves a half-written cache behind. Memory stays flat: documents are
encoded in batches (in parallel by the Rust tokenizer) and appended to the current shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from budgetlm.atomic import sha256_file
from budgetlm.data.readers import ReadStats, check_input_file, read_texts
from budgetlm.errors import UserError
from budgetlm.tokenizer import SEP, encode_plain, load_tokenizer, tokenizer_path

CACHE_VERSION = 1
SHARD_TOKENS = 1 << 26  # 64M tokens per shard
ENCODE_BATCH = 2048  # documents per encode_batch call


def default_cache_dir() -> Path:
    env = os.environ.get("BUDGETLM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "budgetlm" / "tokens"


def cache_key(files: list[Path], tokenizer_file: Path, settings: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, "settings": settings}, sort_keys=True).encode())
    h.update(sha256_file(tokenizer_file).encode())
    for f in files:
        h.update(f.name.encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()[:24]


@dataclass
class TokenCache:
    """Read-only view of a cache entry: a concatenation of memmapped shards."""

    path: Path
    meta: dict

    def __post_init__(self):
        dtype = np.dtype(self.meta["dtype"])
        self.shards = [
            np.memmap(self.path / f"shard_{i:05d}.bin", dtype=dtype, mode="r", shape=(n,))
            for i, n in enumerate(self.meta["shard_tokens"]) if n > 0
        ]
        self.offsets = np.cumsum([0] + [len(s) for s in self.shards])
        self.n_tokens = int(self.offsets[-1])

    def slice(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) as int64, possibly spanning shards."""
        out = np.empty(length, dtype=np.int64)
        filled = 0
        i = int(np.searchsorted(self.offsets, start, side="right")) - 1
        while filled < length:
            shard = self.shards[i]
            lo = start + filled - int(self.offsets[i])
            take = min(length - filled, len(shard) - lo)
            out[filled:filled + take] = shard[lo:lo + take]
            filled += take
            i += 1
        return out


def build_or_load(
    files: list[str | Path],
    tokenizer: str | Path,
    cache_dir: str | Path | None = None,
    doc_split: str = "blank",
    text_column: str = "",
    desc: str = "tokenizing",
) -> TokenCache:
    paths = [check_input_file(f) for f in files]
    if not paths:
        raise UserError("no input files given")
    tok_file = tokenizer_path(tokenizer)
    settings = {"doc_split": doc_split, "text_column": text_column}
    key = cache_key(paths, tok_file, settings)
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    entry = root / key
    if (entry / "meta.json").is_file():
        return TokenCache(entry, json.loads((entry / "meta.json").read_text()))

    tok = load_tokenizer(tok_file)
    vocab = tok.get_vocab_size()
    dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.uint32
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    stats = ReadStats()
    shard_tokens: list[int] = [0]
    n_docs = 0
    out = open(tmp / "shard_00000.bin", "wb")
    t0 = time.time()
    total_bytes = sum(p.stat().st_size for p in paths)
    done_bytes = 0
    try:
        with tqdm(total=total_bytes, unit="B", unit_scale=True, desc=desc, mininterval=1.0) as bar:
            for p in paths:
                batch: list[str] = []
                for doc in read_texts(p, doc_split, text_column, stats):
                    batch.append(doc)
                    if len(batch) == ENCODE_BATCH:
                        n_docs += _write_batch(tok, batch, out, dtype, shard_tokens, bar)
                        out = _maybe_next_shard(out, shard_tokens, tmp)
                        batch = []
                if batch:
                    n_docs += _write_batch(tok, batch, out, dtype, shard_tokens, bar)
                    out = _maybe_next_shard(out, shard_tokens, tmp)
                done_bytes += p.stat().st_size
                bar.n = done_bytes  # chars counted per batch only approximate bytes; settle per file
                bar.refresh()
        out.close()
        if sum(shard_tokens) == 0:
            raise UserError(f"no text found in {', '.join(str(p) for p in paths)}")
        stats.warn()
        meta = {
            "version": CACHE_VERSION, "key": key, "dtype": np.dtype(dtype).name, "shard_tokens": shard_tokens,
            "n_tokens": sum(shard_tokens), "n_docs": n_docs, "vocab_size": vocab, "files": [str(p) for p in paths],
            "settings": settings, "replaced_bytes": stats.replaced, "build_seconds": round(time.time() - t0, 2),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        try:
            tmp.rename(entry)
        except OSError:  # another process built the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        out.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return TokenCache(entry, json.loads((entry / "meta.json").read_text()))


def _write_batch(tok, batch, out, dtype, shard_tokens, bar) -> int:
    ids = encode_plain(tok, batch)
    lengths = np.fromiter((len(x) + 1 for x in ids), dtype=np.int64, count=len(ids))
    flat = np.empty(int(lengths.sum()), dtype=dtype)
    pos = 0
    for x in ids:
        flat[pos:pos + len(x)] = x
        flat[pos + len(x)] = SEP
        pos += len(x) + 1
    flat.tofile(out)
    shard_tokens[-1] += len(flat)
    bar.update(sum(len(d) for d in batch))
    return len(batch)


def _maybe_next_shard(out, shard_tokens, tmp):
    if shard_tokens[-1] < SHARD_TOKENS:
        return out
    out.close()
    shard_tokens.append(0)
    return open(tmp / f"shard_{len(shard_tokens) - 1:05d}.bin", "wb")
