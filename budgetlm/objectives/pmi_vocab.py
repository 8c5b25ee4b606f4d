"""The PMI n-gram vocabulary of PMI-masking (Levine et al., ICLR 2021, arXiv 2010.01825): build, save, read.

Words are maximal runs of letters and digits after NFKC + lowercasing; anything else that is not a space
(punctuation) and document ends break n-grams, so an n-gram never spans a comma or a full stop.

Counting never holds n-gram strings: the text becomes one int32 array of word ids (-1 = break), every
n-gram position gets a 64-bit rolling hash of its word ids, and `np.unique` on the hashes counts them
(one sort per n). A hash collision would merge two n-grams' counts; with a few million distinct n-grams
the chance of any collision is ~1e-7.

Score (the variant used here, PMI_n of the paper's eq. 2):
    PMI_n(w1..wn) = min over segmentations of w1..wn into >= 2 contiguous parts s1..sk of
                    log p(w1..wn) - sum_j log p(s_j)
with p(x) = count(x) / (number of n-gram positions of x's length in the corpus). (The authors' released lists
use p(w1..wn)^2 in the numerator, which favours frequent n-grams; we follow the formula as printed.) Every
part of a kept n-gram occurs at least as often as the n-gram, so min-count pruning never drops a part that
is needed. N-grams are ranked by score within each length, and lengths mixed 50% bigrams, 25% trigrams,
12.5% 4-grams, 12.5% 5-grams (as in the paper), up to the vocabulary size.

File format: '#' comment lines, then one n-gram per line: `words separated by spaces<TAB>count<TAB>score`.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from budgetlm.atomic import check_output_file, replacing
from budgetlm.data.readers import ReadStats, check_input_file, read_texts
from budgetlm.errors import UserError

MIN_N, MAX_N = 2, 5
LENGTH_SHARES = {2: 0.5, 3: 0.25, 4: 0.125, 5: 0.125}
WORDS_PER_ENTRY = 100  # default vocabulary size: one n-gram per this many words of text (see docs/results.md)
TOKEN_RE = re.compile(r"[^\W_]+|[^\w\s]+|_+")  # words (letters/digits) | punctuation runs | underscores
WORD_RE = re.compile(r"[^\W_]")
HEADER = "# budgetlm pmi-vocab v1: n-gram<TAB>count<TAB>PMI_n (min over segmentations, p = count / positions)"

_MULT = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def chain_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """(len(ids) - n + 1,) uint64 hash of each n-gram ids[i:i+n] (order-sensitive); ids is int array."""
    m = len(ids) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = _mix(h * _MULT + ids[k:k + m].astype(np.uint64) + np.uint64(1))
    return h


def words_of(text: str) -> list[str]:
    """Word and break tokens of one document (a break token is a run of punctuation)."""
    return TOKEN_RE.findall(unicodedata.normalize("NFKC", text).lower())


@dataclass
class NgramCounts:
    """Counts of every n-gram (n = 1..MAX_N) occurring at least min_count times, keyed by sorted hashes."""

    words: list[str]  # word id -> word
    stream: np.ndarray  # int32 word ids of the whole text, -1 = break
    hashes: dict[int, np.ndarray]  # n -> sorted uint64 hashes of kept n-grams
    counts: dict[int, np.ndarray]  # n -> their counts
    first: dict[int, np.ndarray]  # n -> a position in `stream` where each occurs
    positions: dict[int, int]  # n -> number of n-gram positions (the denominator of p)

    def lookup(self, n: int, hashes: np.ndarray) -> np.ndarray:
        """Counts of the n-grams with these hashes (0 where absent)."""
        table = self.hashes[n]
        i = np.minimum(np.searchsorted(table, hashes), max(len(table) - 1, 0))
        found = (table[i] == hashes) if len(table) else np.zeros(len(hashes), dtype=bool)
        return np.where(found, self.counts[n][i] if len(table) else 0, 0)


def read_word_stream(files: list[Path], doc_split: str = "blank", text_column: str = "") -> tuple[np.ndarray, list[str]]:
    """The text as int32 word ids with -1 at every break (punctuation, document end)."""
    index: dict[str, int] = {}
    chunks: list[np.ndarray] = []
    stats = ReadStats()
    total = sum(p.stat().st_size for p in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="reading words", mininterval=1.0, file=sys.stderr) as bar:
        for p in files:
            for doc in read_texts(p, doc_split, text_column, stats):
                toks = words_of(doc)
                ids = np.fromiter((index.setdefault(t, len(index)) for t in toks), dtype=np.int32, count=len(toks))
                chunks.append(ids)
                chunks.append(np.array([-1], dtype=np.int32))  # document end
                bar.update(len(doc))
    stats.warn()
    words = list(index)
    is_break = np.fromiter((not WORD_RE.match(w) for w in words), dtype=bool, count=len(words))
    stream = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    stream[(stream >= 0) & is_break[np.maximum(stream, 0)]] = -1
    return stream, words


def count_ngrams(stream: np.ndarray, words: list[str], min_count: int) -> NgramCounts:
    hashes, counts, first, positions = {}, {}, {}, {}
    broken = stream < 0
    for n in range(1, MAX_N + 1):
        h = chain_hashes(stream, n)
        # an n-gram position is valid if none of its n words is a break
        bad = np.convolve(broken, np.ones(n, dtype=np.int64), mode="valid") > 0 if len(stream) >= n else np.zeros(0, bool)
        pos = np.flatnonzero(~bad)
        uniq, idx, cnt = np.unique(h[pos], return_index=True, return_counts=True)
        keep = cnt >= min_count
        hashes[n], counts[n], first[n] = uniq[keep], cnt[keep], pos[idx[keep]]
        positions[n] = len(pos)
    return NgramCounts(words, stream, hashes, counts, first, positions)


def segmentations(n: int) -> list[list[tuple[int, int]]]:
    """All ways to cut range(n) into >= 2 contiguous parts, as lists of (start, end)."""
    out = []
    for k in range(1, n):
        for cuts in itertools.combinations(range(1, n), k):
            bounds = (0,) + cuts + (n,)
            out.append([(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)])
    return out


def pmi_scores(c: NgramCounts, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(word ids (M, n), PMI_n (M,)) of every kept n-gram."""
    starts = c.first[n]
    grams = np.stack([c.stream[starts + k] for k in range(n)], axis=1) if len(starts) else np.zeros((0, n), np.int32)
    log_p = {m: math.log(max(c.positions[m], 1)) for m in range(1, n + 1)}  # log of each length's denominator
    logp_whole = np.log(c.counts[n]) - log_p[n]
    # log p of every sub-n-gram grams[:, a:b]; every one was kept (it occurs at least as often as the whole)
    sub = {}
    for a in range(n):
        for b in range(a + 1, n + 1):
            if (a, b) == (0, n):
                continue
            cnt = c.lookup(b - a, chain_hashes_rows(grams[:, a:b]))
            sub[a, b] = np.log(np.maximum(cnt, 1)) - log_p[b - a]
    best = np.full(len(grams), -np.inf)
    for parts in segmentations(n):
        best = np.maximum(best, sum(sub[p] for p in parts))
    return grams, logp_whole - best


def chain_hashes_rows(rows: np.ndarray) -> np.ndarray:
    """The chain_hashes value of each row of an (M, n) int array (the same hash as in the stream)."""
    h = np.zeros(len(rows), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(rows.shape[1]):
            h = _mix(h * _MULT + rows[:, k].astype(np.uint64) + np.uint64(1))
    return h


@dataclass
class PmiEntry:
    words: tuple[str, ...]
    count: int
    score: float


def select(c: NgramCounts, size: int) -> list[PmiEntry]:
    """Top n-grams by PMI_n per length, mixed by LENGTH_SHARES up to `size` entries."""
    out = []
    for n, share in LENGTH_SHARES.items():
        grams, scores = pmi_scores(c, n)
        quota = int(round(size * share))
        order = np.lexsort((-c.counts[n], -scores))[:quota]  # by score, ties by count
        out += [PmiEntry(tuple(c.words[w] for w in grams[i]), int(c.counts[n][i]), float(scores[i])) for i in order]
    return out


def build_pmi_vocab(files: list[str | Path], out: str | Path, min_count: int = 5, size: int = 0,
                    doc_split: str = "blank", text_column: str = "") -> dict:
    """Count, score, select and write the vocabulary; returns a summary (words, entries per length, seconds)."""
    if min_count < 1:
        raise UserError(f"--min-count must be >= 1, got {min_count}")
    if size < 0:
        raise UserError(f"--size must be >= 0 (0 = one n-gram per {WORDS_PER_ENTRY} words), got {size}")
    paths = [check_input_file(f) for f in files]
    if not paths:
        raise UserError("no input files given")
    out = Path(out)
    check_output_file(out, "give the vocabulary file's name")  # before counting, which can take minutes
    if not os.access(out.parent, os.W_OK):
        raise UserError("cannot write to the output directory", path=str(out.parent))
    t0 = time.perf_counter()
    stream, words = read_word_stream(paths, doc_split, text_column)
    n_words = int((stream >= 0).sum())
    if n_words == 0:
        raise UserError(f"no words found in {', '.join(map(str, paths))}")
    t_read = time.perf_counter()
    counts = count_ngrams(stream, words, min_count)
    size = size or max(n_words // WORDS_PER_ENTRY, 1)
    entries = select(counts, size)
    t_done = time.perf_counter()
    lines = [HEADER, f"# words: {n_words}  min_count: {min_count}  size: {size}  files: {' '.join(p.name for p in paths)}"]
    lines += [f"{' '.join(e.words)}\t{e.count}\t{e.score:.6f}" for e in entries]
    try:
        with replacing(out) as tmp:  # never a half-written vocabulary
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write the vocabulary ({e.strerror})", path=str(out)) from None
    per_n = {n: sum(len(e.words) == n for e in entries) for n in LENGTH_SHARES}
    return {"words": n_words, "distinct_words": len(words), "entries": len(entries), "per_length": per_n,
            "read_seconds": round(t_read - t0, 2), "count_seconds": round(t_done - t_read, 2),
            "seconds": round(t_done - t0, 2)}


def read_pmi_vocab(path: str | Path) -> list[PmiEntry]:
    """Parse a vocabulary file; a malformed line is a UserError naming file and line."""
    p = Path(path)
    if not p.exists():
        raise UserError("PMI vocabulary file not found (build one with `budgetlm pmi-vocab`)", path=str(p))
    check_input_file(p)  # a directory, an empty or a binary file
    entries = []
    with open(p, encoding="utf-8-sig", errors="strict") as f:  # -sig: a BOM is not part of the first line
        try:
            for line_no, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#"):
                    continue
                entries.append(_parse_line(line, p, line_no))
        except UnicodeDecodeError:
            raise UserError("not UTF-8 text", path=str(p)) from None
    if not entries:
        raise UserError("PMI vocabulary holds no n-grams", path=str(p))
    return entries


def _parse_line(line: str, p: Path, line_no: int) -> PmiEntry:
    fields = line.split("\t")
    if len(fields) != 3:
        raise UserError(f"expected 'n-gram<TAB>count<TAB>score', found {len(fields)} field(s)", path=str(p), line=line_no)
    words = tuple(fields[0].split())
    if not MIN_N <= len(words) <= MAX_N:
        raise UserError(f"an n-gram needs {MIN_N} to {MAX_N} words, got {len(words)}", path=str(p), line=line_no)
    try:
        count, score = int(fields[1]), float(fields[2])
    except ValueError:
        raise UserError(f"count must be an integer and score a number, got {fields[1]!r} and {fields[2]!r}",
                        path=str(p), line=line_no) from None
    if count < 1 or not math.isfinite(score):
        raise UserError("count must be >= 1 and score finite", path=str(p), line=line_no)
    return PmiEntry(words, count, score)
