"""The decoder: causality, document-boundary masking, KV cache == recompute, encoder unchanged."""

import pytest
import torch

from budgetlm.errors import UserError
from budgetlm.models import Model, build_lm_model, build_mlm_model
from budgetlm.models.config import ModelConfig
from budgetlm.models.decoder import causal_mask
from budgetlm.objectives.clm import document_ids, lm_logits
from budgetlm.tokenizer import SEP

ARCHS = {
    "gpt2": dict(position="learned", norm="layernorm", glu=False, bias=True, activation="gelu_tanh"),
    "llama": dict(position="rope", norm="rmsnorm", glu=True, bias=False, activation="silu", tie_embeddings=False),
}


@pytest.fixture(params=sorted(ARCHS))
def decoder_model(request, tiny_model_config):
    torch.manual_seed(0)
    cfg = tiny_model_config(family="decoder", type_vocab_size=0, embedding_norm=False, **ARCHS[request.param])
    return build_lm_model(cfg).eval()


def _ids(n, T, vocab, seed=0):
    return torch.randint(5, vocab, (n, T), generator=torch.Generator().manual_seed(seed))


def test_no_position_sees_the_future(decoder_model):
    ids = _ids(2, 16, decoder_model.cfg.vocab_size)
    later = ids.clone()
    later[:, 10:] = _ids(2, 6, decoder_model.cfg.vocab_size, seed=1)
    a, b = lm_logits(decoder_model, ids), lm_logits(decoder_model, later)
    torch.testing.assert_close(a[:, :10], b[:, :10], atol=1e-5, rtol=0)
    assert (a[:, 10:] - b[:, 10:]).abs().max() > 1e-3  # the changed positions do change


def test_document_mask_blocks_the_previous_document(decoder_model):
    """With segments, the second document's logits do not depend on the first document's tokens.
    (Positions keep counting across documents, so with learned positions they differ from the document alone.)"""
    vocab = decoder_model.cfg.vocab_size
    doc2 = torch.cat([torch.tensor([[SEP]]), _ids(1, 7, vocab, seed=2)], dim=1)  # [SEP] opens document 2
    packed = [torch.cat([_ids(1, 9, vocab, seed=seed), doc2], dim=1) for seed in (3, 4)]  # (1, 17) each
    segs = document_ids(packed[0])
    assert segs[0, :9].eq(0).all() and segs[0, 9:].eq(1).all()
    a, b = (lm_logits(decoder_model, p, document_ids(p))[:, 9:] for p in packed)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    if decoder_model.cfg.position == "rope":  # relative positions: exactly the document on its own
        torch.testing.assert_close(a, lm_logits(decoder_model, doc2), atol=1e-5, rtol=0)
    # without the mask the first document does leak in
    assert (lm_logits(decoder_model, packed[0])[:, 9:] - lm_logits(decoder_model, packed[1])[:, 9:]).abs().max() > 1e-3


def test_causal_mask_shapes():
    assert causal_mask(5) is None and causal_mask(1, start=4) is None
    m = causal_mask(2, start=3)  # queries at 3, 4 over keys 0..4
    assert m.tolist() == [[True] * 4 + [False], [True] * 5]
    seg = torch.tensor([[0, 0, 1, 1]])
    assert causal_mask(4, 0, seg)[0, 0].tolist() == [
        [True, False, False, False], [True, True, False, False], [False, False, True, False], [False, False, True, True]]


def test_kv_cache_equals_recompute(decoder_model):
    ids = _ids(2, 20, decoder_model.cfg.vocab_size)
    full = lm_logits(decoder_model, ids)  # (2, 20, V)
    dec, head = decoder_model.decoder, decoder_model.heads["lm"]
    cache = dec.new_cache(2)
    pieces = [ids[:, :7], ids[:, 7:8], ids[:, 8:15], ids[:, 15:16], ids[:, 16:]]  # prefill, single, chunk, ...
    out = torch.cat([head(dec(p, cache=cache)) for p in pieces], dim=1)
    assert cache.length == 20
    torch.testing.assert_close(out, full, atol=1e-5, rtol=0)


def test_decoder_rejects_positions_past_max_seq_len(decoder_model):
    cache = decoder_model.decoder.new_cache(1)
    decoder_model.decoder(_ids(1, 30, decoder_model.cfg.vocab_size), cache=cache)
    with pytest.raises(ValueError, match="max_seq_len"):
        decoder_model.decoder(_ids(1, 3, decoder_model.cfg.vocab_size), cache=cache)


def test_tied_head_owns_no_weights(tiny_model_config):
    tied = build_lm_model(tiny_model_config(family="decoder", type_vocab_size=0))
    untied = build_lm_model(tiny_model_config(family="decoder", type_vocab_size=0, tie_embeddings=False))
    assert not list(tied.heads.parameters())
    assert sum(p.numel() for p in untied.heads.parameters()) == untied.cfg.vocab_size * untied.cfg.d_model


def test_backward_reaches_every_parameter(decoder_model):
    decoder_model.train()
    ids = _ids(2, 12, decoder_model.cfg.vocab_size)
    lm_logits(decoder_model, ids[:, :-1], document_ids(ids[:, :-1])).logsumexp(-1).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in decoder_model.parameters())


def test_encoder_stays_bidirectional(tiny_model_config):
    torch.manual_seed(0)
    model = build_mlm_model(tiny_model_config()).eval()
    ids = _ids(1, 10, model.cfg.vocab_size)
    later = ids.clone()
    later[0, 9] = (later[0, 9] + 1) % model.cfg.vocab_size
    assert (model.encoder(ids)[0, 0] - model.encoder(later)[0, 0]).abs().max() > 1e-4


def test_family_config_validation():
    with pytest.raises(UserError, match="type_vocab_size=0"):
        ModelConfig(family="decoder").validate()
    with pytest.raises(UserError, match="model.family"):
        ModelConfig(family="seq2seq").validate()
    with pytest.raises(UserError, match="model.norm"):
        ModelConfig(norm="batchnorm").validate()
    assert isinstance(Model(ModelConfig(family="decoder", type_vocab_size=0, vocab_size=50)).backbone, torch.nn.Module)
