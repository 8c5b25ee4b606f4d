"""Embedding task: data assembly, the resumable mixed batch source, the training step, STS evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from budgetlm.data.pairs import PairData
from budgetlm.models import EmbeddingHead, Model
from budgetlm.tasks.config import EmbeddingConfig
from budgetlm.tasks.embedding import (
    EmbeddingBatches, build_embedding_data, embed, embedding_step, sentence_embeddings, spearman_of_cosines,
)


@pytest.fixture
def data(tiny_tokenizer, sentence_maker):
    s = sentence_maker(0, 40)
    sources = [PairData("sts", scored=[(s[i], s[i + 1], float(i % 6)) for i in range(0, 20, 2)]),
               PairData("pairs", positives=[(s[i], s[i + 1]) for i in range(20, 30, 2)]),
               PairData("raw", sentences=s[30:36] + [s[0]])]  # s[0] repeats: tokenised once
    d = build_embedding_data(sources, tiny_tokenizer, 32, extra_sentences=s[36:])
    d.distill = list(range(len(d.texts)))
    d.teacher = np.random.default_rng(0).standard_normal((len(d.texts), 8)).astype(np.float32)
    return d


def test_build_embedding_data_dedups_sentences(data):
    assert len(data.texts) == 40 and len(data.ids) == 40
    assert data.sizes() == {"scored": 10, "pairs": 5, "simcse": 7, "distill": 40}
    assert data.scored[1][2] == pytest.approx(2 / 5)  # score 2.0 of 5, scaled to [0, 1]
    assert data.simcse[-1] == data.scored[0][0]


def test_embedding_batches_resume_exactly(data):
    weights = {"scored": 1, "pairs": 1, "simcse": 1, "distill": 0}  # a zero weight drops the component
    batches = EmbeddingBatches(data, 4, seed=3, weights=weights)
    assert set(batches.samplers) == {"scored", "pairs", "simcse"}
    for _ in range(3):
        next(batches)
    state = batches.state_dict()
    expected = [next(batches) for _ in range(4)]
    resumed = EmbeddingBatches(data, 4, seed=3, weights=weights)
    resumed.load_state_dict(state)
    for want, got in zip(expected, (next(resumed) for _ in range(4))):
        for name in want:
            for key in want[name]:
                w, g = want[name][key], got[name][key]
                if isinstance(w, dict):
                    assert all(torch.equal(w[k], g[k]) for k in w)
                else:
                    assert torch.equal(w, g)


def test_length_grouped_embedding_batches_pad_less_and_cover_every_sentence(data, tiny_tokenizer, sentence_maker):
    rng = np.random.default_rng(0)
    texts = [" ".join(s for _ in range(int(rng.integers(1, 5)))) for s in sentence_maker(1, 400)]  # 1-4x long
    d = build_embedding_data([PairData("raw", sentences=texts)], tiny_tokenizer, 256)
    d.distill = list(range(len(d.texts)))
    d.teacher = np.zeros((len(d.texts), 8), dtype=np.float32)

    def padding(grouped: bool) -> tuple[float, list[int]]:
        batches = EmbeddingBatches(d, 8, seed=1, weights={"distill": 1}, group_by_length=grouped)
        slots = real = 0
        seen = []
        for _ in range(len(d.texts) // 8):  # one epoch
            mask = next(batches)["distill"]["a"]["attention_mask"]
            slots, real = slots + mask.numel(), real + int(mask.sum())
            seen += mask.sum(1).tolist()
        return slots / real, sorted(seen)

    random_ratio, random_lengths = padding(False)
    grouped_ratio, grouped_lengths = padding(True)
    assert grouped_ratio < 1.15 < random_ratio
    assert grouped_lengths == random_lengths  # the same sentences, once each, in another order


def test_embedding_step_learns(data, tiny_model_config):
    """A few steps of every loss together lower it (overfitting one fixed batch)."""
    torch.manual_seed(0)
    cfg = tiny_model_config(dropout=0.1)
    model = Model(cfg, {"embed": EmbeddingHead(cfg, "mean", 8)})
    emb = EmbeddingConfig(distill_loss="mse", temperature=0.1)
    batch = next(EmbeddingBatches(data, 5, 0, {"scored": 1, "pairs": 1, "simcse": 1, "distill": 1}))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss, n_tokens, extra = embedding_step(model, batch, emb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert set(extra) == {"scored_loss", "pairs_loss", "simcse_loss", "distill_loss"}
    assert n_tokens == sum(int(b["attention_mask"].sum()) for sub in batch.values() for b in sub.values() if isinstance(b, dict))
    assert min(losses[-5:]) < 0.6 * losses[0]


def test_contrastive_distillation_adds_info_nce_against_the_teacher(data, tiny_model_config):
    """distill loss = distill_weight * mse(student, teacher) + w * InfoNCE(student_i picks teacher_i), by hand."""
    torch.manual_seed(0)
    cfg = tiny_model_config()
    model = Model(cfg, {"embed": EmbeddingHead(cfg, "mean", 8)}).eval()
    batch = {"distill": next(EmbeddingBatches(data, 6, 0, {"distill": 1}))["distill"]}
    student = F.normalize(sentence_embeddings(model, batch["distill"]["a"]).float(), dim=-1)
    teacher = F.normalize(batch["distill"]["teacher"].float(), dim=-1)
    mse = ((student - teacher) ** 2).sum(-1).mean() / 2
    logits = student @ teacher.T / 0.1
    rows = -torch.log_softmax(logits, dim=1).diagonal().mean()  # student i -> teacher i
    cols = -torch.log_softmax(logits, dim=0).diagonal().mean()  # teacher i -> student i
    plain, _, _ = embedding_step(model, batch, EmbeddingConfig(distill_weight=2.0, temperature=0.1))
    torch.testing.assert_close(plain, 2 * mse)
    both, _, _ = embedding_step(model, batch, EmbeddingConfig(distill_weight=2.0, temperature=0.1,
                                                              distill_contrastive_weight=0.5))
    torch.testing.assert_close(both, 2 * mse + 0.5 * (rows + cols) / 2)
    one_way, _, _ = embedding_step(model, batch, EmbeddingConfig(distill_weight=2.0, temperature=0.1, bidirectional=False,
                                                                 distill_contrastive_weight=0.5))
    torch.testing.assert_close(one_way, 2 * mse + 0.5 * rows)


def test_embed_order_and_norm(data, tiny_model_config):
    cfg = tiny_model_config()
    model = Model(cfg)  # no embedding head: mean pooling
    out = embed(model, data.ids[:9], batch_size=4)  # length-sorted batches, returned in input order
    assert out.shape == (9, cfg.d_model)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(9))
    torch.testing.assert_close(out[5], embed(model, [data.ids[5]])[0], atol=1e-5, rtol=1e-5)


def test_spearman_of_cosines():
    a = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), dim=-1)
    b = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, 1.0], [0.0, 1.0]]), dim=-1)
    assert spearman_of_cosines(a, b, [5.0, 2.5, 0.0]) == pytest.approx(100.0)
    assert spearman_of_cosines(a, b, [0.0, 2.5, 5.0]) == pytest.approx(-100.0)
