"""Decoder export: GPT2LMHeadModel / LlamaForCausalLM built from budgetlm weights give the same logits and the
same greedy generations as budgetlm; export -> import round-trips; options with no matching class are refused."""

import pytest
import torch

from budgetlm.errors import UserError
from budgetlm.exporters.hf_import import from_hf
from budgetlm.exporters.writers import export_hf
from budgetlm.models.load import load as load_any
from budgetlm.generate import generate
from budgetlm.models import build_lm_model
from budgetlm.models.config import ModelConfig
from budgetlm.models.io import model_meta, save_model
from budgetlm.generate.config import GenerateConfig
from budgetlm.tokenizer import SEP

ARCHS = {  # arch -> (ModelConfig options, expected transformers class)
    "gpt2": (dict(position="learned", norm="layernorm", glu=False, bias=True, activation="gelu_tanh"), "GPT2LMHeadModel"),
    "gpt2-untied-gelu": (dict(position="learned", norm="layernorm", glu=False, bias=True, activation="gelu",
                              tie_embeddings=False), "GPT2LMHeadModel"),
    "llama": (dict(position="rope", norm="rmsnorm", glu=True, bias=False, activation="silu", rope_theta=500.0,
                   tie_embeddings=False), "LlamaForCausalLM"),
    "llama-tied": (dict(position="rope", norm="rmsnorm", glu=True, bias=False, activation="silu"), "LlamaForCausalLM"),
}


def tiny_decoder(arch: str, vocab_size: int, seed: int = 0, **overrides):
    options = {**ARCHS[arch][0], **overrides}
    cfg = ModelConfig(family="decoder", vocab_size=vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq_len=24,
                      type_vocab_size=0, embedding_norm=False, dropout=0.0, init_std=0.2, **options)
    cfg.validate()
    torch.manual_seed(seed)
    return build_lm_model(cfg).eval()  # init_std 0.2: peaked distributions, so greedy choices are not near-ties


@pytest.fixture(params=sorted(ARCHS))
def exported(request, tmp_path, tokenizer_file):
    from budgetlm.tokenizer import load_tokenizer

    model = tiny_decoder(request.param, load_tokenizer(tokenizer_file).get_vocab_size())
    src = save_model(model, tmp_path / "model", model_meta(model, "clm"), tokenizer_file)
    return request.param, model, export_hf(src, tmp_path / "hf")


def test_exported_logits_match(exported):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    arch, model, out = exported
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(hf).__name__ == ARCHS[arch][1]
    batch = AutoTokenizer.from_pretrained(out)(["the cat sat on the mat", "a dog ran"], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids[0, 0] == SEP  # an exported decoder tokenizer opens a document, as budgetlm generate does
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask).logits[mask.bool()]
        ours = model.heads["lm"](model.decoder(ids))[mask.bool()]
    assert (ours - theirs).abs().max().item() < 1e-4


def test_greedy_generation_matches_transformers(exported):
    from transformers import AutoModelForCausalLM

    arch, model, out = exported
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    greedy = GenerateConfig(max_new_tokens=12, temperature=0.0)
    for prompt in ([SEP, 10, 11, 12], [SEP, 30], [SEP, 7, 8, 9, 40, 41, 42, 43]):
        ours = generate(model, prompt, greedy, stop_token=None)  # no early stop: compare all 12 tokens
        with torch.no_grad():
            theirs = hf.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False, eos_token_id=None,
                                 pad_token_id=0)[0, len(prompt):].tolist()
        assert ours == theirs
        assert len(set(ours)) > 1  # a real sequence, not one token repeated


def test_round_trip_through_transformers(exported):
    arch, model, out = exported
    back, meta, tok = load_any(out)
    assert meta["kind"] == "clm" and back.cfg == model.cfg
    for k, v in model.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0)


@pytest.mark.parametrize("options,reason", [
    (dict(position="rope", norm="layernorm", glu=True, bias=False), "gpt2 needs model.position='learned'"),
    (dict(position="learned", norm="layernorm", glu=False, bias=True, embedding_norm=True), "embedding_norm=False"),
    (dict(position="rope", norm="rmsnorm", glu=False, bias=False), "llama needs model.glu=True"),
])
def test_options_without_a_transformers_class_are_refused(tmp_path, tokenizer_file, options, reason):
    cfg = ModelConfig(family="decoder", vocab_size=100, d_model=32, n_layers=1, n_heads=4, d_ff=64, max_seq_len=16,
                      type_vocab_size=0, **{"embedding_norm": False, **options})
    model = build_lm_model(cfg)
    src = save_model(model, tmp_path / "model", model_meta(model, "clm"), tokenizer_file)
    with pytest.raises(UserError, match="no transformers class matches") as e:
        export_hf(src, tmp_path / "hf")
    assert reason in str(e.value)
