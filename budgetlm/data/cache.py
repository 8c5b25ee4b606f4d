"""Packed token cache: encode a corpus once, store it as numpy memmap shards, reuse it on the next run.

Layout of one cache entry, `<cache_dir>/<key>/`:
    meta.json            key inputs, dtype, tokens per shard, documents, replaced bytes
    shard_00000.bin ...  one flat stream of token ids: doc1 [SEP] doc2 [SEP] ...  (uint16 if the vocab fits)
    words_00000.bin ...  only with word_starts=True: one uint8 per token, 1 where a token starts a word
                         (a new word id in the fast tokenizer's `word_ids`, so it holds for WordPiece `##`,
                         byte-level BPE `Ġ` and Unigram `▁` alike; [SEP] is a word of its own)
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
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from budgetlm.atomic import sha256_file
from budgetlm.data.readers import ReadStats, check_input_file, read_texts
from budgetlm.errors import UserError
from budgetlm.tokenizer import SEP, load_tokenizer, tokenizer_path

CACHE_VERSION = 1
SHARD_TOKENS = 1 << 26  # 64M tokens per shard
ENCODE_BATCH = 2048  # documents per encode_batch call


def default_cache_dir(purpose: str = "") -> Path:
    """Where budgetlm caches what it can rebuild: $BUDGETLM_CACHE, else ~/.cache/budgetlm; a subfolder per purpose
    ('teacher' embeddings, converted 'tokenizers'). Token caches take the folder itself (their entries are hashes)."""
    env = os.environ.get("BUDGETLM_CACHE")
    root = Path(env) if env else Path.home() / ".cache" / "budgetlm"
    return root / purpose if purpose else root


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

        self.word_shards = None
        if self.meta["settings"].get("word_starts"):
            self.word_shards = [
                np.memmap(self.path / f"words_{i:05d}.bin", dtype=np.uint8, mode="r", shape=(n,))
                for i, n in enumerate(self.meta["shard_tokens"]) if n > 0
            ]

    @property
    def has_word_starts(self) -> bool:
        return self.word_shards is not None

    def slice(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) as int64, possibly spanning shards."""
        return self._slice(self.shards, start, length, np.int64)

    def slice_word_starts(self, start: int, length: int) -> np.ndarray:
        """Word-start flags of tokens [start, start + length) as bool (the cache must hold them)."""
        if self.word_shards is None:
            raise ValueError(f"token cache {self.path} was built without word starts")
        return self._slice(self.word_shards, start, length, np.bool_)

    def _slice(self, shards, start: int, length: int, dtype) -> np.ndarray:
        out = np.empty(length, dtype=dtype)
        filled = 0
        i = int(np.searchsorted(self.offsets, start, side="right")) - 1
        while filled < length:
            shard = shards[i]
            lo = start + filled - int(self.offsets[i])
            take = min(length - filled, len(shard) - lo)
            out[filled:filled + take] = shard[lo:lo + take]
            filled += take
            i += 1
        return out


def _text_bytes(p: Path) -> int:
    """The size of the text a file holds, for the progress bar: a zip's .txt members uncompressed, else the file."""
    if p.suffix.lower() == ".zip" and zipfile.is_zipfile(p):  # a bad zip: the reader says so, with its name
        with zipfile.ZipFile(p) as zf:
            return sum(i.file_size for i in zf.infolist() if i.filename.lower().endswith(".txt"))
    return p.stat().st_size


def build_or_load(
    files: list[str | Path],
    tokenizer: str | Path,
    cache_dir: str | Path | None = None,
    doc_split: str = "blank",
    text_column: str = "",
    desc: str = "tokenizing",
    word_starts: bool = False,
) -> TokenCache:
    """The cache entry for these inputs, built on first use. `word_starts=True` also stores word boundaries
    (for whole-word, span and PMI masking); it is part of the key, so such entries never shadow plain ones."""
    paths = [check_input_file(f) for f in files]
    if not paths:
        raise UserError("no input files given")
    tok_file = tokenizer_path(tokenizer)
    settings = {"doc_split": doc_split, "text_column": text_column}
    if word_starts:  # only when asked, so the keys of plain caches stay what they were
        settings["word_starts"] = True
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
    out = _ShardWriter(tmp, word_starts)
    t0 = time.time()
    total_bytes = sum(_text_bytes(p) for p in paths)
    done_bytes = 0
    try:
        with tqdm(total=total_bytes, unit="B", unit_scale=True, desc=desc, mininterval=1.0) as bar:
            for p in paths:
                batch: list[str] = []
                for doc in read_texts(p, doc_split, text_column, stats):
                    batch.append(doc)
                    if len(batch) == ENCODE_BATCH:
                        n_docs += _write_batch(tok, batch, out, dtype, shard_tokens, bar)
                        out.maybe_next_shard(shard_tokens)
                        batch = []
                if batch:
                    n_docs += _write_batch(tok, batch, out, dtype, shard_tokens, bar)
                    out.maybe_next_shard(shard_tokens)
                done_bytes += _text_bytes(p)
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


class _ShardWriter:
    """The open shard file(s) of a cache being built: token ids and, if asked, word-start flags."""

    def __init__(self, tmp: Path, word_starts: bool):
        self.tmp, self.word_starts, self.index = tmp, word_starts, 0
        self._open()

    def _open(self):
        self.ids = open(self.tmp / f"shard_{self.index:05d}.bin", "wb")
        self.words = open(self.tmp / f"words_{self.index:05d}.bin", "wb") if self.word_starts else None

    def maybe_next_shard(self, shard_tokens: list[int]) -> None:
        if shard_tokens[-1] < SHARD_TOKENS:
            return
        self.close()
        shard_tokens.append(0)
        self.index += 1
        self._open()

    def close(self) -> None:
        self.ids.close()
        if self.words is not None:
            self.words.close()


def _write_batch(tok, batch, out: _ShardWriter, dtype, shard_tokens, bar) -> int:
    encodings = tok.encode_batch(batch, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) + 1 for e in encodings), dtype=np.int64, count=len(encodings))
    flat = np.empty(int(lengths.sum()), dtype=dtype)
    starts = np.ones(len(flat), dtype=np.uint8) if out.words is not None else None
    pos = 0
    for e in encodings:
        n = len(e.ids)
        flat[pos:pos + n] = e.ids
        flat[pos + n] = SEP
        if starts is not None and n > 1:
            # a token starts a word where its word id differs from the previous token's
            # (added tokens have no word id: None -> NaN, which differs from everything, so they stand alone)
            w = np.array(e.word_ids, dtype=np.float64)
            starts[pos + 1:pos + n] = w[1:] != w[:-1]
        pos += n + 1
    flat.tofile(out.ids)
    if starts is not None:
        starts.tofile(out.words)
    shard_tokens[-1] += len(flat)
    bar.update(sum(len(d) for d in batch))
    return len(batch)
