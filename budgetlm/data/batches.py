"""Batching: fixed-length blocks from the token cache (pre-training), padded examples (fine-tuning).

Batch sources are resumable: `state_dict()` records where in which epoch they are, and the order of an
epoch is a pure function of (seed, epoch), so a resumed run sees exactly the batches it would have seen.

Under torchrun the loop calls `shard(rank, world)`: every rank walks the same epoch permutation in steps of
the global batch (batch_size x world) and takes its own slice of it, so no sequence is seen twice per epoch,
the union of the ranks' batches is the batch one process with batch_size x world would draw, and the saved
position counts global sequences -- a run can resume with another number of ranks if the global batch is kept.
"""

from __future__ import annotations

import numpy as np
import torch

from budgetlm.data.cache import TokenCache
from budgetlm.errors import UserError
from budgetlm.tokenizer import CLS, PAD, SPECIAL_TOKENS


class BlockDataset:
    """Fixed-length blocks of the packed stream (documents end with [SEP]) in tokens [begin, end) of the cache.

    Encoders (start_token=CLS): block i = [CLS] + the next (block_len - 1) tokens.
    Decoders (start_token=None): block i = block_len tokens from i * (block_len - 1), so consecutive blocks
    share one token and every token is a next-token target exactly once (inputs block[:-1], labels block[1:]).
    """

    def __init__(self, cache: TokenCache, block_len: int, start_token: int | None = CLS, begin: int = 0, end: int | None = None):
        self.cache = cache
        self.block_len = block_len
        self.start_token = start_token
        self.begin = begin
        end = cache.n_tokens if end is None else end
        self.stride = block_len - 1
        usable = end - begin - (0 if start_token is not None else 1)
        self.n_blocks = max(usable, 0) // self.stride
        if self.n_blocks == 0:
            files = ", ".join(cache.meta.get("files", [])) or str(cache.path)
            raise UserError(f"{files}: only {end - begin} tokens, fewer than one block of {block_len}; "
                            "give more text or a smaller model.max_seq_len")

    def __len__(self) -> int:
        return self.n_blocks

    def block(self, i: int) -> np.ndarray:
        pos = self.begin + i * self.stride
        if self.start_token is None:
            return self.cache.slice(pos, self.block_len)
        out = np.empty(self.block_len, dtype=np.int64)
        out[0] = self.start_token
        out[1:] = self.cache.slice(pos, self.stride)
        return out

    def batch(self, indices) -> torch.Tensor:  # (B, block_len)
        return torch.from_numpy(np.stack([self.block(int(i)) for i in indices]))

    def word_starts(self, i: int) -> np.ndarray:
        """(block_len,) bool: True where a token of block i starts a word. [CLS] and the block's first text
        token always do (a word cut by the block boundary becomes a word of its own)."""
        out = np.empty(self.block_len, dtype=np.bool_)
        out[0] = True
        out[1:] = self.cache.slice_word_starts(self.begin + i * self.stride, self.stride)  # encoder layout ([CLS] first)
        out[1] = True
        return out

    def word_start_batch(self, indices) -> torch.Tensor:  # (B, block_len) bool
        return torch.from_numpy(np.stack([self.word_starts(int(i)) for i in indices]))


def special_mask(ids: torch.Tensor) -> torch.Tensor:
    """True where a token is special ([PAD], [UNK], [CLS], [SEP], [MASK] have the lowest ids)."""
    return ids < len(SPECIAL_TOKENS)


GROUP_BATCHES = 64  # length grouping sorts the examples of this many global batches at a time


class EpochSampler:
    """Shuffled indices, epoch after epoch; the permutation of epoch e depends only on (seed, e).

    `batch_size` is per rank; `epoch` and `pos` count global sequences (the same on every rank). With `lengths`
    (one per example), each epoch is length-grouped (see `_group_by_length`).
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool = True, lengths=None):
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.lengths = None if lengths is None else np.asarray(lengths)
        if self.lengths is not None and len(self.lengths) != n:
            raise ValueError(f"{len(self.lengths)} lengths for {n} examples")
        self.epoch, self.pos = 0, 0
        self.rank, self.world = 0, 1
        self._order = None

    def shard(self, rank: int, world: int) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        self.rank, self.world = rank, world

    def _perm(self) -> np.ndarray:
        if self._order is None:
            if not self.shuffle:
                self._order = np.arange(self.n)
            else:
                rng = np.random.default_rng([self.seed, self.epoch])
                order = rng.permutation(self.n)
                self._order = order if self.lengths is None else self._group_by_length(order, rng)
        return self._order

    def _group_by_length(self, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Length-grouped epoch (HF's group_by_length): cut the shuffled order into groups of GROUP_BATCHES global
        batches, sort each group by length, cut it into global batches and shuffle the batches of the whole
        epoch. Batches hold examples of similar length (little padding) yet stay random in content and order.

        When n is not a multiple of the global batch, the previous epoch ended on a partial batch, which the first
        `head` examples of this epoch complete; the grouped batches start after them, so they stay whole (were
        they cut from the epoch's start instead, every batch after the first epoch would straddle two sorted
        batches: on the STS-B + MRPC sentences, 1.25 instead of 1.03 positions per real token after padding). `head`
        follows from (epoch, n), so a resumed run lays the epoch out the same way."""
        size = self.batch_size * self.world
        head = (-self.epoch * self.n) % size
        first, rest = order[:head], order[head:]
        group = size * GROUP_BATCHES
        grouped = [g[np.argsort(-self.lengths[g], kind="stable")] for g in np.split(rest, range(group, len(rest), group))]
        flat = np.concatenate(grouped)
        full = len(rest) // size
        batches = flat[:full * size].reshape(full, size)[rng.permutation(full)]
        return np.concatenate([first, batches.reshape(-1), flat[full * size:]])

    def next_indices(self) -> np.ndarray:
        """This rank's slice of the next global batch."""
        start = self.rank * self.batch_size
        return self._next_global()[start:start + self.batch_size]

    def _next_global(self) -> np.ndarray:
        out = []
        need = self.batch_size * self.world
        while need:
            order = self._perm()
            take = order[self.pos:self.pos + need]
            out.append(take)
            need -= len(take)
            self.pos += len(take)
            if self.pos >= self.n:
                self.epoch, self.pos, self._order = self.epoch + 1, 0, None
        return np.concatenate(out)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos, self._order = int(state["epoch"]), int(state["pos"]), None


class BlockBatches:
    """Pre-training batches: {'ids': (B, T)}, plus 'word_starts' (B, T) bool if the cache holds word starts."""

    def __init__(self, dataset: BlockDataset, batch_size: int, seed: int):
        self.dataset = dataset
        self.sampler = EpochSampler(len(dataset), batch_size, seed)

    def __next__(self) -> dict:
        indices = self.sampler.next_indices()
        batch = {"ids": self.dataset.batch(indices)}
        if self.dataset.cache.has_word_starts:
            batch["word_starts"] = self.dataset.word_start_batch(indices)
        return batch

    def shard(self, rank: int, world: int) -> None:
        self.sampler.shard(rank, world)

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


def pad_batch(seqs: list[list[int]], type_ids: list[list[int]] | None = None) -> dict:
    """Right-pad to the longest sequence: {'ids', 'attention_mask', 'token_type_ids'} of shape (B, T)."""
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), PAD, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    types = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        if type_ids is not None:
            types[i, : len(s)] = torch.tensor(type_ids[i])
    return {"ids": ids, "attention_mask": mask, "token_type_ids": types}


IGNORE_INDEX = -100  # the label of positions that carry no loss (padding, non-first sub-tokens, unmasked tokens);
# defined here, the leaf both data/ and objectives/ import (torch's cross_entropy ignore_index default)


def pad_labels(labels: list, T: int) -> torch.Tensor:
    """(B,) class ids or float targets; or (B, T) token labels right-padded with IGNORE_INDEX."""
    if isinstance(labels[0], list):
        out = torch.full((len(labels), T), IGNORE_INDEX, dtype=torch.long)
        for i, row in enumerate(labels):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out
    return torch.tensor(labels, dtype=torch.float if isinstance(labels[0], float) else torch.long)


class ExampleBatches:
    """Fine-tuning batches of encoded examples: pad_batch(...) plus 'labels' ((B,) or (B, T) for token labels)."""

    def __init__(self, encoded: list[list[int]], labels: list, batch_size: int, seed: int,
                 type_ids: list[list[int]] | None = None, group_by_length: bool = False):
        self.encoded, self.labels, self.type_ids = encoded, labels, type_ids
        lengths = [len(e) for e in encoded] if group_by_length else None
        self.sampler = EpochSampler(len(encoded), batch_size, seed, lengths=lengths)

    def __len__(self) -> int:
        return len(self.encoded)

    def __next__(self) -> dict:
        idx = self.sampler.next_indices()
        types = [self.type_ids[i] for i in idx] if self.type_ids is not None else None
        batch = pad_batch([self.encoded[i] for i in idx], types)
        batch["labels"] = pad_labels([self.labels[i] for i in idx], batch["ids"].shape[1])
        return batch

    def shard(self, rank: int, world: int) -> None:
        self.sampler.shard(rank, world)

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


class PairBatches:
    """Text-to-text batches: {'inputs': (B, S) right-padded with [PAD], 'labels': (B, L) right-padded with -100}."""

    def __init__(self, sources: list[list[int]], targets: list[list[int]], batch_size: int, seed: int):
        self.sources, self.targets = sources, targets
        self.sampler = EpochSampler(len(sources), batch_size, seed)

    def __next__(self) -> dict:
        idx = self.sampler.next_indices()
        return {"inputs": pad_ids([self.sources[i] for i in idx], PAD),
                "labels": pad_ids([self.targets[i] for i in idx], IGNORE_INDEX)}

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)



def pad_ids(rows: list[list[int]], value: int) -> torch.Tensor:
    """Right-pad id lists to the longest: (B, T) long."""
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out
