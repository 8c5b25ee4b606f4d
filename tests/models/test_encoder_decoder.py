"""The encoder-decoder: smoke over architectures, causality, source-padding invariance, KV cache == recompute,
cached == uncached generation, memorising a batch, and the save/load round trip."""

from __future__ import annotations

import itertools

import pytest
import torch

from budgetlm.models import EncoderDecoderModel, build_seq2seq_model
from budgetlm.models.config import ModelConfig
from budgetlm.models.io import load_model, model_meta, save_model
from budgetlm.generate.seq2seq import DECODER_START, EOS, generate, strip_generated
from budgetlm.objectives.seq2seq import seq2seq_loss, shift_right
from budgetlm.tokenizer import PAD, SPECIAL_TOKENS

ARCHS = [dict(norm_position=n, position=p, glu=g, bias=b)
         for n, p, g, b in itertools.product(["pre", "post"], ["learned", "rope"], [True, False], [True, False])]
ARCH_IDS = [f"{a['norm_position']}-{a['position']}-{'glu' if a['glu'] else 'mlp'}-{'bias' if a['bias'] else 'nobias'}" for a in ARCHS]
VOCAB = 40


def tiny(**kw) -> ModelConfig:
    base = dict(family="encoder_decoder", vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=2, d_ff=64,
                max_seq_len=16, dropout=0.0, type_vocab_size=0)
    cfg = ModelConfig(**{**base, **kw})
    cfg.validate()
    return cfg


def random_model(seed: int = 0, **kw) -> EncoderDecoderModel:
    """Random weights with a large spread, so logits differ clearly between tokens and positions."""
    torch.manual_seed(seed)
    model = build_seq2seq_model(tiny(**kw)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def batch(seed: int = 0, B: int = 3, S: int = 9, T: int = 7):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(len(SPECIAL_TOKENS), VOCAB, (B, S), generator=g)
    mask = torch.ones(B, S, dtype=torch.long)
    src[1, S - 4:], mask[1, S - 4:] = PAD, 0  # one padded source
    dec = torch.randint(len(SPECIAL_TOKENS), VOCAB, (B, T), generator=g)
    dec[:, 0] = DECODER_START
    return src, mask, dec


@pytest.mark.parametrize("arch", ARCHS, ids=ARCH_IDS)
def test_forward_backward_smoke(arch):
    torch.manual_seed(0)
    model = build_seq2seq_model(tiny(dropout=0.1, n_decoder_layers=3, **arch)).train()
    assert len(model.decoder.blocks) == 3 and len(model.encoder.blocks) == 2
    src, _, dec = batch()
    labels = dec.clone()
    labels[0, 4:] = -100
    loss, n, _ = seq2seq_loss(model, src, labels)
    assert n == int((labels != -100).sum()) and torch.isfinite(loss)
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no (finite) gradient for {missing[:3]}"
    assert float(model.encoder.tok_emb.weight.grad.abs().sum()) > 0


def test_shift_right():
    labels = torch.tensor([[7, 8, 3], [9, 3, -100]])
    assert shift_right(labels).tolist() == [[DECODER_START, 7, 8], [DECODER_START, 9, 3]]


@pytest.mark.parametrize("position", ["learned", "rope"])
def test_decoder_is_causal(position):
    model = random_model(position=position)
    src, mask, dec = batch()
    changed = dec.clone()
    changed[:, 4] = (changed[:, 4] + 1 - len(SPECIAL_TOKENS)) % (VOCAB - len(SPECIAL_TOKENS)) + len(SPECIAL_TOKENS)
    with torch.no_grad():
        a, b = model(src, mask, dec), model(src, mask, changed)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6), "a position saw a later decoder token"
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)


def test_source_padding_is_invisible():
    model = random_model()
    src, mask, dec = batch()
    with torch.no_grad():
        padded = model(src, mask, dec)[1]
        alone = model(src[1:2, :5], None, dec[1:2])[0]
    assert torch.allclose(padded, alone, atol=1e-5), (padded - alone).abs().max()


@pytest.mark.parametrize("arch", [dict(norm_position="pre", position="learned"), dict(norm_position="post", position="rope")],
                         ids=["pre-learned", "post-rope"])
def test_kv_cache_equals_recompute(arch):
    model = random_model(**arch)
    src, mask, dec = batch()
    with torch.no_grad():
        full = model(src, mask, dec)  # (B, T, V) teacher-forced in one pass
        memory = model.encode(src, mask)
        cache = model.decoder.new_cache(dec.shape[0])
        steps = [model.logits(model.decode(dec[:, :3], memory, mask, cache))]  # a 3-token prefix at once, ...
        steps += [model.logits(model.decode(dec[:, 3:5], memory, mask, cache))]  # 2 more after the cached ones, ...
        steps += [model.logits(model.decode(dec[:, t:t + 1], memory, mask, cache)) for t in range(5, dec.shape[1])]
    cached = torch.cat(steps, dim=1)  # ... then one token at a time
    assert cache.length == dec.shape[1]
    assert all(k is not None for k in cache.cross_k)
    assert torch.allclose(cached, full, atol=1e-5), (cached - full).abs().max()


@pytest.fixture(scope="module")
def memorising_model(memorisation):
    return memorisation[1](tiny())


@pytest.fixture
def memorised_pairs(memorisation):
    return memorisation[0]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cached_generation_equals_uncached(temperature, memorising_model, memorised_pairs):
    sources, _ = memorised_pairs(VOCAB)
    src = torch.cat([sources, batch(seed=2, S=7)[0]])  # memorised sources and unseen ones
    mask = (src != PAD).long()
    runs = [generate(memorising_model, src, mask, max_new_tokens=12, temperature=temperature, top_k=10,
                     generator=torch.Generator().manual_seed(3), use_cache=use_cache) for use_cache in (True, False)]
    assert torch.equal(runs[0], runs[1])
    assert len(set(runs[0][:, 1:].flatten().tolist())) > 5, "degenerate generations would make this test vacuous"


def test_generation_stops_at_eos_and_respects_max_seq_len(memorising_model, memorised_pairs):
    sources, targets = memorised_pairs(VOCAB)
    out = generate(memorising_model, sources, (sources != PAD).long(), max_new_tokens=50)
    assert out.shape[1] <= memorising_model.cfg.max_seq_len
    wanted = [[t for t in row if t not in (-100, EOS)] for row in targets.tolist()]
    assert [strip_generated(row) for row in out.tolist()] == wanted, "a memorised batch is generated back exactly"
    for row in out.tolist():  # after EOS only padding
        assert all(t == PAD for t in row[row.index(EOS) + 1:])
    long = generate(memorising_model, batch(seed=4)[0], None, max_new_tokens=50, temperature=1.0,
                    generator=torch.Generator().manual_seed(0))
    assert long.shape[1] <= memorising_model.cfg.max_seq_len  # 1 start token + at most max_seq_len - 1 new ones


def test_generate_rejects_negative_temperature():
    with pytest.raises(ValueError, match="temperature"):
        generate(random_model(), *batch()[:2], temperature=-1.0)


def test_save_and_load_round_trip(tmp_path, tiny_tokenizer_file):
    model = random_model(position="rope", n_decoder_layers=1)
    out = save_model(model, tmp_path / "model", model_meta(model, "seq2seq"), tiny_tokenizer_file)
    loaded, meta = load_model(out)
    assert meta["kind"] == "seq2seq" and isinstance(loaded, EncoderDecoderModel)
    src, mask, dec = batch()
    with torch.no_grad():
        assert torch.equal(model(src, mask, dec), loaded(src, mask, dec))
