"""PMI-masking (Levine et al., ICLR 2021, arXiv 2010.01825): mask collocations whole, so the model cannot
predict half of "los angeles" from the other half.

Units are the n-grams of a PMI vocabulary (pmi_vocab.py) found in the sequence, longest match first with
overlaps between equally long matches resolved at random, and every remaining word on its own. Units are
taken in random order until the token budget round(rate * candidates) is met; 80/10/10 applies per unit.

Matching works on token ids, for any tokenizer: each vocabulary n-gram is encoded with the run's tokenizer
once, and a 64-bit hash of its words' token ids is compared with the same hash of every n-word window of
the batch (words from the token cache's word starts). A window is only a match if its words line up with the
tokenizer's words for the n-gram, so "new york" never matches inside "new yorker".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from budgetlm.objectives.pmi_vocab import MAX_N, MIN_N, _MULT, _mix, chain_hashes, read_pmi_vocab
from budgetlm.objectives.units import mask_unit_rows, word_index
from budgetlm.tokenizer import UNK

if TYPE_CHECKING:  # annotations only: objectives/config.py reads the package's MASKING_FUNCTIONS
    from budgetlm.objectives.config import ObjectiveConfig


def word_hashes(tokens: np.ndarray, first_token: np.ndarray) -> np.ndarray:
    """(W,) uint64 hash of each word's token ids; words are the runs starting at `first_token` (sorted)."""
    if len(first_token) == 0:
        return np.zeros(0, dtype=np.uint64)
    marks = np.zeros(len(tokens), dtype=np.int64)
    marks[first_token] = 1
    word = np.cumsum(marks) - 1  # (N,) word of each token
    within = np.arange(len(tokens)) - first_token[word]  # position inside the word
    with np.errstate(over="ignore"):
        v = _mix(tokens.astype(np.uint64) * _MULT + within.astype(np.uint64) + np.uint64(1))
        return np.add.reduceat(v, first_token)


@dataclass
class PmiNgrams:
    """The vocabulary as sorted hash tables, one per n-gram length in tokenizer words."""

    tables: dict[int, np.ndarray]  # n -> sorted uint64 n-gram hashes
    size: int  # n-grams usable with this tokenizer
    skipped: int  # n-grams dropped: [UNK] inside, or not 2..5 words for this tokenizer

    @classmethod
    def from_file(cls, path: str | Path, tokenizer) -> "PmiNgrams":
        """Read a `budgetlm pmi-vocab` file and encode its n-grams with the run's tokenizer."""
        entries = read_pmi_vocab(path)
        encodings = tokenizer.encode_batch([" ".join(e.words) for e in entries], add_special_tokens=False)
        ngrams = []
        for enc in encodings:
            ids = np.array(enc.ids, dtype=np.int64)
            w = np.array(enc.word_ids, dtype=np.float64)  # tokenizer words; None (added tokens) -> NaN
            first = np.flatnonzero(np.r_[True, w[1:] != w[:-1]]) if len(ids) else np.zeros(0, np.int64)
            ngrams.append([tuple(part) for part in np.split(ids, first[1:])] if not (ids == UNK).any() else [])
        return cls.from_token_words(ngrams)

    @classmethod
    def from_token_words(cls, ngrams: list[list[tuple[int, ...]]]) -> "PmiNgrams":
        """From n-grams given as lists of words, each word a tuple of token ids; n-grams that are not 2..5 words
        (for this tokenizer) or are empty (held [UNK]) are skipped and counted."""
        by_n: dict[int, list[int]] = {n: [] for n in range(MIN_N, MAX_N + 1)}
        skipped = 0
        for words in ngrams:
            if not MIN_N <= len(words) <= MAX_N or any(len(w) == 0 for w in words):
                skipped += 1
                continue
            ids = np.array([t for w in words for t in w], dtype=np.int64)
            first = np.cumsum([0] + [len(w) for w in words[:-1]])
            by_n[len(words)].append(int(chain_hashes(word_hashes(ids, first), len(words))[0]))
        tables = {n: np.unique(np.array(h, dtype=np.uint64)) for n, h in by_n.items()}
        return cls(tables, len(ngrams) - skipped, skipped)

    def matches(self, ids: np.ndarray, words: np.ndarray) -> list[list[tuple[int, int]]]:
        """Per row, every (first word, n) where words first..first+n-1 form a vocabulary n-gram.

        ids (B, T); words (B, T) word index per token within its row, -1 on specials.
        """
        B, T = ids.shape
        flat_words = words.reshape(-1)
        pos = np.arange(B * T)
        # a global word starts at each row start, at each change of word index, and at every special token
        new = np.r_[True, flat_words[1:] != flat_words[:-1]] | (pos % T == 0) | (flat_words < 0)
        first = np.flatnonzero(new)  # (W,)
        wh = word_hashes(ids.reshape(-1), first)
        valid = flat_words[first] >= 0
        row = first // T
        local = flat_words[first]
        out: list[list[tuple[int, int]]] = [[] for _ in range(B)]
        for n, table in self.tables.items():
            if len(table) == 0 or len(first) < n:
                continue
            h = chain_hashes(wh, n)  # (W - n + 1,)
            ok = np.ones(len(h), dtype=bool)
            for k in range(n):
                ok &= valid[k:k + len(h)]
            ok &= row[: len(h)] == row[n - 1:]
            hit = ok & np.isin(h, table)
            for i in np.flatnonzero(hit):
                out[row[i]].append((int(local[i]), n))
        return out


def pmi_units(n_words: int, matches: list[tuple[int, int]], keys: np.ndarray) -> np.ndarray:
    """(n_words,) unit id per word: matched n-grams longest first (ties in random `keys` order) claim their
    words unless one is already claimed; every other word is a unit of its own."""
    unit = np.full(n_words, -1, dtype=np.int64)
    n_units = 0
    order = sorted(range(len(matches)), key=lambda i: (-matches[i][1], keys[i]))
    for i in order:
        s, n = matches[i]
        if (unit[s:s + n] >= 0).any():
            continue
        unit[s:s + n] = n_units
        n_units += 1
    free = unit < 0
    unit[free] = n_units + np.arange(int(free.sum()))
    return unit


def mask_pmi(
    ids: torch.Tensor,  # (B, T) long
    special_mask: torch.Tensor,  # (B, T) bool: never chosen
    generator: torch.Generator,
    cfg: ObjectiveConfig,
    vocab_size: int,
    mask_token_id: int,
    n_special: int = 0,
    word_starts: torch.Tensor | None = None,  # (B, T) bool: True where a token starts a word
    ngrams: PmiNgrams | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    if word_starts is None or ngrams is None:
        raise ValueError("PMI masking needs word_starts and the n-gram vocabulary (ngrams=PmiNgrams.from_file(...))")
    words = word_index(word_starts, special_mask).numpy()  # (B, T)
    found = ngrams.matches(ids.numpy(), words)
    rows = []
    for b in range(ids.shape[0]):
        n_words = int(words[b].max()) + 1
        keys = torch.rand(len(found[b]), generator=generator).numpy()
        unit_of_word = pmi_units(n_words, found[b], keys)
        units = np.full(words.shape[1], -1, dtype=np.int64)
        on = words[b] >= 0
        units[on] = unit_of_word[words[b][on]]
        rows.append(units)
    return mask_unit_rows(rows, ids, special_mask, generator, cfg, vocab_size, mask_token_id, n_special)
