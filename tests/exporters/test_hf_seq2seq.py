"""Encoder-decoder export: BART (post-LN) / mBART (pre-LN) from transformers reproduce budgetlm's logits (1e-4)
and its greedy generations token for token; options without a matching class are refused by name."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer

from budgetlm.errors import UserError
from budgetlm.exporters.hf_families import EXPORT_NOTE
from budgetlm.exporters.hf_import import from_hf
from budgetlm.exporters.writers import export_hf
from budgetlm.exporters.hf_seq2seq import to_hf, verify_parity
from budgetlm.models import build_seq2seq_model
from budgetlm.models.config import ModelConfig
from budgetlm.models.io import model_meta, save_model
from budgetlm.generate.seq2seq import DECODER_START, generate
from budgetlm.tokenizer import PAD

FAMILY_OF = {"post": "BartForConditionalGeneration", "pre": "MBartForConditionalGeneration"}


def tiny(vocab: int = 50, **kw) -> ModelConfig:
    base = dict(family="encoder_decoder", vocab_size=vocab, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq_len=16,
                dropout=0.0, type_vocab_size=0)
    cfg = ModelConfig(**{**base, **kw})
    cfg.validate()
    return cfg


def spread(model):
    """Random weights with a large spread (biases and norms included), so a wrong mapping shows in the logits."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def probe(vocab: int, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(5, vocab, (3, 11), generator=g)
    mask = torch.ones_like(src)
    src[2, 6:], mask[2, 6:] = PAD, 0
    dec = torch.randint(5, vocab, (3, 8), generator=g)
    dec[:, 0] = DECODER_START
    return src, mask, dec


@pytest.mark.parametrize("arch", [
    dict(norm_position="post"), dict(norm_position="pre"),
    dict(norm_position="post", activation="relu", n_decoder_layers=3),
    dict(norm_position="pre", activation="gelu_tanh", n_decoder_layers=1),
], ids=["bart", "mbart", "bart-relu-3dec", "mbart-gelu_tanh-1dec"])
def test_logits_match_transformers(arch):
    model = spread(build_seq2seq_model(tiny(**arch)))
    hf = to_hf(model)  # verify=True: its own probe batch agrees
    assert type(hf).__name__ == FAMILY_OF[arch["norm_position"]]
    src, mask, dec = probe(model.cfg.vocab_size)
    with torch.no_grad():
        ours = model(src, mask, dec)
        theirs = hf(input_ids=src, attention_mask=mask, decoder_input_ids=dec).logits
    assert ours.abs().max() > 1.0, "near-zero logits would make the comparison vacuous"
    assert (ours - theirs).abs().max() <= 1e-4


@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_greedy_generations_match_transformers_generate(norm_position, tmp_path, tokenizer_file, memorisation):
    memorised_pairs, train_memorising_model = memorisation
    vocab = Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()
    model = train_memorising_model(tiny(vocab, norm_position=norm_position))
    sources, _ = memorised_pairs(vocab)
    src = torch.cat([sources, probe(vocab)[0][:, :7]])  # memorised and unseen sources, some padded
    mask = (src != PAD).long()
    ours = generate(model, src, mask, max_new_tokens=10)

    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    out = export_hf(save_model(model, tmp_path / "model", model_meta(model, "seq2seq"), tokenizer_file), tmp_path / "hf")
    hf = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    theirs = hf.generate(input_ids=src, attention_mask=mask, max_new_tokens=10, do_sample=False, num_beams=1)
    assert torch.equal(ours, theirs), f"\n{ours}\n{theirs}"
    assert len(set(ours[:, 1:].flatten().tolist())) > 5, "degenerate generations would make this test vacuous"

    note = json.loads((out / EXPORT_NOTE).read_text())
    assert note["kind"] == "seq2seq" and note["architecture"] == FAMILY_OF[norm_position]
    tok = AutoTokenizer.from_pretrained(out)
    enc = tok(["the cat sat", "a dog"], return_tensors="pt", padding=True)
    assert "token_type_ids" not in enc
    with torch.no_grad():
        hf(**enc, decoder_input_ids=torch.full((2, 1), DECODER_START))  # the tokenizer's outputs fit the model


def test_self_check_catches_a_wrong_weight():
    model = spread(build_seq2seq_model(tiny()))
    hf = to_hf(model)
    with torch.no_grad():
        hf.model.decoder.layers[0].encoder_attn.v_proj.weight.mul_(-1)
    with pytest.raises(UserError, match="does not reproduce"):
        verify_parity(model, hf)


@pytest.mark.parametrize("arch, expected", [
    (dict(position="rope"), ["bart needs model.norm_position='post', model.position='learned'",
                             "mbart needs model.position='learned'"]),
    (dict(norm_position="pre", glu=True), ["mbart needs model.glu=False"]),
    (dict(norm_position="pre", bias=False), ["mbart needs model.bias=True"]),
    (dict(norm_position="post", norm_eps=1e-6), ["bart needs model.norm_eps=1e-05"]),
    (dict(norm_position="post", embedding_norm=False), ["bart needs model.embedding_norm=True"]),
])
def test_options_without_a_class_are_refused(arch, expected, tmp_path, tokenizer_file):
    model = build_seq2seq_model(tiny(**arch))
    with pytest.raises(UserError, match="no transformers encoder-decoder class matches") as info:
        to_hf(model)
    for text in expected:
        assert text in str(info.value)
    src = save_model(model, tmp_path / "model", model_meta(model, "seq2seq"), tokenizer_file)
    with pytest.raises(UserError, match="no transformers encoder-decoder class"):
        export_hf(src, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_reading_an_exported_encoder_decoder_back_is_refused_clearly(tmp_path, tokenizer_file):
    model = build_seq2seq_model(tiny(Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()))
    out = export_hf(save_model(model, tmp_path / "model", model_meta(model, "seq2seq"), tokenizer_file), tmp_path / "hf")
    with pytest.raises(UserError, match="encoder-decoders .* not supported"):
        from_hf(out)
