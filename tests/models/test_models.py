"""Models: smoke tests over every architecture x head, padding invariance, and an overfit-one-batch check."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from budgetlm.data.batches import pad_batch, special_mask
from budgetlm.models import Model, SequenceClassificationHead, build_mlm_model, count_parameters
from budgetlm.models.config import HeadConfig
from budgetlm.models.io import load_model, model_meta, save_model
from budgetlm.models.layers import SelfAttention
from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.mlm import IGNORE_INDEX, mask_tokens, mlm_loss
from budgetlm.tokenizer import CLS, MASK, SEP, SPECIAL_TOKENS

ARCHS = [
    dict(norm_position=n, position=p, glu=g, bias=b)
    for n, p, g, b in itertools.product(["pre", "post"], ["learned", "rope"], [True, False], [True, False])
]
ARCH_IDS = [f"{a['norm_position']}-{a['position']}-{'glu' if a['glu'] else 'mlp'}-{'bias' if a['bias'] else 'nobias'}" for a in ARCHS]
HEADS = ["mlm", "cls", "mean"]


def _ids(vocab: int, B: int, T: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(len(SPECIAL_TOKENS), vocab, (B, T), generator=g)
    ids[:, 0], ids[:, -1] = CLS, SEP
    return ids


def _build(cfg, head: str, num_labels: int = 3) -> Model:
    if head == "mlm":
        return build_mlm_model(cfg)
    return Model(cfg, {"cls": SequenceClassificationHead(cfg, HeadConfig(pooling=head, norm=True), num_labels)})


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("arch", ARCHS, ids=ARCH_IDS)
def test_forward_backward_smoke(arch, head, tiny_model_config):
    torch.manual_seed(0)
    cfg = tiny_model_config(dropout=0.1, **arch)
    model = _build(cfg, head).train()
    B, T = 3, 12
    ids = _ids(cfg.vocab_size, B, T)
    if head == "mlm":
        inputs, labels = mask_tokens(ids, special_mask(ids), torch.Generator().manual_seed(0), ObjectiveConfig(),
                                     cfg.vocab_size, MASK, len(SPECIAL_TOKENS))
        loss, n, _ = mlm_loss(model, inputs, labels)
        assert n == int((labels != IGNORE_INDEX).sum()) > 0
    else:
        mask = torch.ones(B, T, dtype=torch.long)
        mask[1, 8:] = 0  # one padded row
        hidden = model.encoder(ids, torch.zeros_like(ids), mask)
        assert hidden.shape == (B, T, cfg.d_model)
        logits = model.heads["cls"](hidden, mask)
        assert logits.shape == (B, 3)
        loss = F.cross_entropy(logits, torch.tensor([0, 1, 2]))
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
    # the encoder's input embedding always learns something
    assert model.encoder.tok_emb.weight.grad.abs().sum() > 0
    # bias=False really drops the biases of every linear layer and norm in the encoder
    has_bias = any(n.endswith(".bias") for n, _ in model.encoder.named_parameters())
    assert has_bias == arch["bias"]


def test_glu_doubles_the_input_projection(tiny_model_config):
    plain = build_mlm_model(tiny_model_config(glu=False))
    gated = build_mlm_model(tiny_model_config(glu=True))
    assert plain.encoder.blocks[0].mlp.fc_in.out_features == 64
    assert gated.encoder.blocks[0].mlp.fc_in.out_features == 128
    assert count_parameters(gated) > count_parameters(plain)


def test_relu2_feed_forward_is_relu_squared(tiny_model_config):
    mlp = build_mlm_model(tiny_model_config(activation="relu2")).encoder.blocks[0].mlp
    x = torch.randn(2, 3, 32)
    expected = mlp.fc_out(torch.clamp(mlp.fc_in(x), min=0) ** 2)
    torch.testing.assert_close(mlp(x), expected)


def test_rope_has_no_position_table_and_learned_has_one(tiny_model_config):
    assert build_mlm_model(tiny_model_config(position="rope")).encoder.pos_emb is None
    assert build_mlm_model(tiny_model_config(position="learned")).encoder.pos_emb.weight.shape == (32, 32)


def test_too_long_input_is_refused(tiny_model_config):
    cfg = tiny_model_config()
    with pytest.raises(ValueError, match="max_seq_len"):
        build_mlm_model(cfg).encoder(_ids(cfg.vocab_size, 1, cfg.max_seq_len + 1))


@pytest.mark.parametrize("arch", ARCHS, ids=ARCH_IDS)
def test_padding_invariance(arch, tiny_model_config):
    """A sequence's hidden states at its real positions do not depend on right-padding in the batch."""
    torch.manual_seed(0)
    cfg = tiny_model_config(dropout=0.1, **arch)  # dropout is set, but eval() must switch it off
    model = Model(cfg, {"cls": SequenceClassificationHead(cfg, HeadConfig(pooling="mean"), 2)}).eval()
    short = _ids(cfg.vocab_size, 1, 7, seed=1)[0].tolist()
    long = _ids(cfg.vocab_size, 1, 19, seed=2)[0].tolist()
    with torch.no_grad():
        alone = model.encoder(torch.tensor([short]))[0]  # (7, D), no mask at all
        batch = pad_batch([long, short])
        padded = model.encoder(batch["ids"], batch["token_type_ids"], batch["attention_mask"])  # (2, 19, D)
        long_alone = model.encoder(torch.tensor([long]))[0]
        assert torch.allclose(padded[1, :7], alone, atol=1e-5), (padded[1, :7] - alone).abs().max()
        assert torch.allclose(padded[0], long_alone, atol=1e-5)
        # the pooled classifier output is padding-invariant too (mean pooling must ignore [PAD])
        logits = model.heads["cls"](padded, batch["attention_mask"])
        alone_logits = model.heads["cls"](alone[None], None)
        assert torch.allclose(logits[1], alone_logits[0], atol=1e-5)


def test_overfit_one_batch(tiny_model_config):
    """A tiny model must be able to memorise one fixed masked batch: catches broken gradients / heads / masking."""
    torch.manual_seed(0)
    cfg = tiny_model_config()
    model = build_mlm_model(cfg).train()
    ids = _ids(cfg.vocab_size, 4, 24, seed=3)
    inputs, labels = mask_tokens(ids, special_mask(ids), torch.Generator().manual_seed(0), ObjectiveConfig(),
                                 cfg.vocab_size, MASK, len(SPECIAL_TOKENS))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(100):
        loss, _, correct = mlm_loss(model, inputs, labels)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final, n, correct = mlm_loss(model.eval(), inputs, labels)
    assert first > 3.0  # ~ln(vocab) at initialisation
    assert float(final) < 0.1, f"loss {first:.3f} -> {float(final):.3f}"
    assert correct == n


def test_save_and_load_round_trip(tiny_model_config, tiny_tokenizer_file, tmp_path):
    torch.manual_seed(0)
    cfg = tiny_model_config(position="rope", glu=True, bias=False)
    head = HeadConfig(pooling="mean", norm=True)
    model = Model(cfg, {"cls": SequenceClassificationHead(cfg, head, 2)}).eval()
    meta = model_meta(model, "classifier", head={"pooling": "mean", "norm": True}, labels=["neg", "pos"])
    out = save_model(model, tmp_path / "model", meta, tiny_tokenizer_file)
    assert (out / "tokenizer.json").read_bytes() == tiny_tokenizer_file.read_bytes()
    loaded, loaded_meta = load_model(out)
    assert loaded_meta["labels"] == ["neg", "pos"]
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in loaded.state_dict())
    ids = _ids(cfg.vocab_size, 2, 10)
    with torch.no_grad():
        a = model.heads["cls"](model.encoder(ids), None)
        b = loaded.heads["cls"](loaded.encoder(ids), None)
    assert torch.equal(a, b)


def test_embedding_head_activation_round_trips_and_bad_ones_are_clear_errors(tiny_model_config, tmp_path):
    from budgetlm.errors import UserError
    from budgetlm.models import EmbeddingHead
    from budgetlm.models.io import build_from_meta

    cfg = tiny_model_config()
    torch.manual_seed(0)
    model = Model(cfg, {"embed": EmbeddingHead(cfg, "cls", 8, activation="tanh")}).eval()
    pooled = torch.randn(3, cfg.d_model)
    head = model.heads["embed"]
    torch.testing.assert_close(head(pooled[:, None, :], None), torch.tanh(head.proj(pooled)))
    meta = model_meta(model, "embedder", embedding={"pooling": "cls", "dim": 8, "top_pcs": 0, "activation": "tanh"})
    loaded, _ = load_model(save_model(model, tmp_path / "m", meta, None))
    assert loaded.heads["embed"].activation == "tanh"
    for bad, message in [({"dim": 8, "activation": "relu"}, "embedding activation 'relu'"),
                         ({"dim": 0, "activation": "tanh"}, "needs a projection")]:
        with pytest.raises(UserError, match=message):
            build_from_meta({**meta, "embedding": {"pooling": "cls", **bad}})


def test_mean_pooling_ignores_padding():
    from budgetlm.models.heads import pool

    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2); position 2 is padding
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]
    assert pool(hidden, None, "mean").tolist() == [pytest.approx([104 / 3, 106 / 3])]


@pytest.mark.parametrize("pooling, dim", [("mean", 0), ("cls", 16)])
def test_embedding_head_is_padding_invariant(tiny_model_config, pooling, dim):
    from budgetlm.data.batches import pad_batch
    from budgetlm.models import EmbeddingHead, Model

    cfg = tiny_model_config()
    torch.manual_seed(0)
    model = Model(cfg, {"embed": EmbeddingHead(cfg, pooling, dim)}).eval()
    seqs = [[2, 10, 11, 3], [2, 12, 13, 14, 15, 16, 3]]
    batch = pad_batch(seqs)
    together = model.heads["embed"](model.encoder(batch["ids"], None, batch["attention_mask"]), batch["attention_mask"])
    alone = model.heads["embed"](model.encoder(torch.tensor([seqs[0]]), None, None), None)
    assert together.shape == (2, dim or cfg.d_model)
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention_dropout, random", [(-1.0, True), (0.0, False), (0.2, True)])
def test_attention_dropout_follows_dropout_unless_set(attention_dropout, random, tiny_model_config):
    cfg = tiny_model_config(dropout=0.1, attention_dropout=attention_dropout)
    assert cfg.attention_dropout_p == (0.1 if attention_dropout == -1.0 else attention_dropout)
    attn = SelfAttention(cfg).train()
    x = torch.randn(2, 5, cfg.d_model)
    with torch.no_grad():
        assert (not torch.equal(attn(x, None, None), attn(x, None, None))) == random


def test_attention_stays_fp32_under_cpu_autocast_and_matches_sdpa():
    from budgetlm.models.layers import attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 5, 4, requires_grad=True) for _ in range(3))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attention(q.bfloat16(), k.bfloat16(), v, is_causal=True)  # mixed, as RoPE leaves q, k and v
    assert y.dtype == torch.float32
    assert torch.allclose(y, ref, atol=2e-2)  # only the bf16 rounding of q and k
    y.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))
    assert torch.equal(attention(q, k, v, is_causal=True), ref)  # outside autocast: SDPA unchanged
