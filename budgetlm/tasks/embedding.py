"""Sentence embeddings: training data assembly, the resumable mixed batch source, the training step,
embedding a list of texts, and the STS evaluation (Spearman of cosine similarity, x100).

A training step sums up to four losses, each on its own batch of `train.batch_size`:

    scored    STS-style pairs with a 0-5 score         objectives.contrastive.cosent / cosine_mse
    pairs     positive pairs, in-batch negatives        info_nce (temperature, margin, bidirectional)
    simcse    raw sentences, each encoded twice         info_nce: dropout noise is the only augmentation
    distill   sentences with teacher embeddings         distill_mse / similarity_matching, plus (with
                                                        distill_contrastive_weight) info_nce(student, teacher):
                                                        each student embedding must pick out its own teacher
                                                        embedding among the batch's (contrastive distillation)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import spearmanr
from tqdm import tqdm

from budgetlm.data.batches import EpochSampler, pad_batch
from budgetlm.data.pairs import PairData
from budgetlm.models.heads import pool
from budgetlm.objectives.contrastive import DISTILL_LOSSES, REGRESSION_LOSSES, info_nce
from budgetlm.tasks.base import TaskType
from budgetlm.tasks.config import EmbeddingConfig

COMPONENTS = ("scored", "pairs", "simcse", "distill")


class SentenceEmbedding(TaskType):
    """The embedding task type: pairs, STS scores and teacher distillation train an embedding head, through the
    embedding method (stages/finetune_embedding.py) rather than a classification head."""

    name = "embedding"
    description = "sentence embeddings"
    head_kind = "embedding"
    method = "embedding"
    main_metric = "spearman"


def encode_ids(tok, texts: list[str], max_len: int) -> list[list[int]]:
    tok.enable_truncation(max_len)
    return [e.ids for e in tok.encode_batch(texts)]  # [CLS] text [SEP]


@dataclass
class EmbeddingData:
    """Training data, tokenised. Pairs index into `ids` (unique sentences), so each sentence is encoded once."""

    ids: list[list[int]] = field(default_factory=list)
    scored: list[tuple[int, int, float]] = field(default_factory=list)  # (a, b, score / 5)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    simcse: list[int] = field(default_factory=list)
    distill: list[int] = field(default_factory=list)  # sentence indices; row k of `teacher` belongs to distill[k]
    texts: list[str] = field(default_factory=list)
    teacher: np.ndarray | None = None

    def sizes(self) -> dict[str, int]:
        return {"scored": len(self.scored), "pairs": len(self.pairs), "simcse": len(self.simcse), "distill": len(self.distill)}


def build_embedding_data(sources: list[PairData], tok, max_len: int, extra_sentences: list[str] = ()) -> EmbeddingData:
    """Unique sentences of every source, tokenised once; `extra_sentences` only feed distillation."""
    index: dict[str, int] = {}

    def sid(text: str) -> int:
        if text not in index:
            index[text] = len(index)
        return index[text]

    data = EmbeddingData()
    for src in sources:
        data.scored += [(sid(a), sid(b), s / 5.0) for a, b, s in src.scored]
        data.pairs += [(sid(a), sid(b)) for a, b in src.positives]
        data.simcse += [sid(t) for t in src.sentences]
    for t in extra_sentences:
        sid(t)
    data.texts = list(index)
    data.ids = encode_ids(tok, data.texts, max_len)
    return data


class EmbeddingBatches:
    """Resumable: one EpochSampler per non-empty component; each batch is {component: sub-batch}. With
    `group_by_length` each component's epoch is length-grouped (EpochSampler): on the 15,311 STS-B + MRPC
    training sentences, batches of 32 hold 2.12x their real tokens in positions after padding when random,
    1.03x grouped (bench/embedding_padding.py)."""

    def __init__(self, data: EmbeddingData, batch_size: int, seed: int, weights: dict[str, float],
                 group_by_length: bool = False):
        self.data = data
        self.samplers = {
            name: EpochSampler(n, min(batch_size, n), seed + i, lengths=self._lengths(name) if group_by_length else None)
            for i, (name, n) in enumerate(data.sizes().items()) if n and weights.get(name, 0) > 0
        }

    def _lengths(self, name: str) -> list[int]:
        """Per example of a component, the padded length it brings to a batch (a pair: its longer sentence)."""
        d, n = self.data, lambda i: len(self.data.ids[i])
        if name == "scored":
            return [max(n(a), n(b)) for a, b, _ in d.scored]
        if name == "pairs":
            return [max(n(a), n(b)) for a, b in d.pairs]
        return [n(i) for i in (d.simcse if name == "simcse" else d.distill)]

    def __next__(self) -> dict:
        d = self.data
        out = {}
        for name, sampler in self.samplers.items():
            idx = sampler.next_indices()
            if name == "scored":
                rows = [d.scored[i] for i in idx]
                out[name] = {"a": pad_batch([d.ids[a] for a, _, _ in rows]), "b": pad_batch([d.ids[b] for _, b, _ in rows]),
                             "scores": torch.tensor([s for _, _, s in rows], dtype=torch.float32)}
            elif name == "pairs":
                rows = [d.pairs[i] for i in idx]
                out[name] = {"a": pad_batch([d.ids[a] for a, _ in rows]), "b": pad_batch([d.ids[b] for _, b in rows])}
            elif name == "simcse":
                out[name] = {"a": pad_batch([d.ids[d.simcse[i]] for i in idx])}
            else:
                out[name] = {"a": pad_batch([d.ids[d.distill[i]] for i in idx]),
                             "teacher": torch.from_numpy(d.teacher[idx])}
        return out

    def state_dict(self) -> dict:
        return {name: s.state_dict() for name, s in self.samplers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, s in self.samplers.items():
            if name in state:
                s.load_state_dict(state[name])


def sentence_embeddings(model, batch: dict) -> torch.Tensor:
    """(B, D) un-normalised embeddings of a padded batch; a model without an embedding head is mean-pooled."""
    hidden = model.encoder(batch["ids"], batch["token_type_ids"], batch["attention_mask"])  # (B, T, D)
    if "embed" in model.heads:
        return model.heads["embed"](hidden, batch["attention_mask"])
    return pool(hidden, batch["attention_mask"], "mean")


def _two_views(model, a: dict, b: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed two padded batches of the same size in one forward pass."""
    T = max(a["ids"].shape[1], b["ids"].shape[1])
    both = {k: torch.cat([_pad_to(a[k], T), _pad_to(b[k], T)]) for k in ("ids", "token_type_ids", "attention_mask")}
    emb = sentence_embeddings(model, both)
    return emb[: len(a["ids"])], emb[len(a["ids"]):]


def _pad_to(t: torch.Tensor, T: int) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, T - t.shape[1]))  # [PAD] = 0, mask 0, type 0


def embedding_step(model, batch: dict, cfg: EmbeddingConfig) -> tuple[torch.Tensor, int, dict]:
    """Weighted sum of the losses of the components present in `batch`; (loss, n_tokens, per-loss figures)."""
    total, n_tokens, extra = 0.0, 0, {}
    for name, sub in batch.items():
        if name == "scored":
            a, b = _two_views(model, sub["a"], sub["b"])
            loss = cfg.regression_weight * REGRESSION_LOSSES[cfg.regression](a, b, sub["scores"])
        elif name == "pairs":
            a, b = _two_views(model, sub["a"], sub["b"])
            loss = cfg.contrastive_weight * info_nce(a, b, cfg.temperature, cfg.margin, cfg.bidirectional)
        elif name == "simcse":  # the same sentences twice: different dropout masks make the positive pair
            a, b = _two_views(model, sub["a"], sub["a"])
            loss = cfg.contrastive_weight * info_nce(a, b, cfg.temperature, cfg.margin, cfg.bidirectional)
        else:
            student = sentence_embeddings(model, sub["a"])
            loss = cfg.distill_weight * DISTILL_LOSSES[cfg.distill_loss](student, sub["teacher"])
            if cfg.distill_contrastive_weight:
                loss = loss + cfg.distill_contrastive_weight * info_nce(student, sub["teacher"], cfg.temperature,
                                                                        bidirectional=cfg.bidirectional)
        total = total + loss
        extra[f"{name}_loss"] = round(float(loss.detach()), 5)
        n_tokens += sum(int(v["attention_mask"].sum()) for v in sub.values() if isinstance(v, dict))
    return total, n_tokens, extra


@torch.no_grad()
def embed(model, encoded: list[list[int]], batch_size: int = 128, progress: bool = False) -> torch.Tensor:
    """(N, D) L2-normalised embeddings in input order; batches sorted by length to cut padding."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[torch.Tensor | None] = [None] * len(encoded)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc="embedding", unit="batch", file=sys.stderr, mininterval=2.0, disable=not progress):
        idx = order[start:start + batch_size]
        emb = torch.nn.functional.normalize(sentence_embeddings(model, pad_batch([encoded[i] for i in idx])), dim=-1)
        for j, i in enumerate(idx):
            out[i] = emb[j]
    model.train(was_training)
    return torch.stack(out)


def sts_spearman(model, tok, pairs: list[tuple[str, str, float]], max_len: int) -> float:
    """Spearman correlation (x100) between cos(embed(s1), embed(s2)) and the gold scores."""
    a = embed(model, encode_ids(tok, [p[0] for p in pairs], max_len))
    b = embed(model, encode_ids(tok, [p[1] for p in pairs], max_len))
    return spearman_of_cosines(a, b, [p[2] for p in pairs])


def spearman_of_cosines(a: torch.Tensor, b: torch.Tensor, scores: list[float]) -> float:
    cos = (a * b).sum(-1).numpy()  # a, b normalised
    return float(spearmanr(cos, np.asarray(scores)).statistic * 100)
