"""HF export parity: an exported model, loaded with stock `transformers` Auto classes, gives budgetlm's logits."""

import dataclasses
import json
import shutil

import pytest
import torch
from tokenizers import Tokenizer

from budgetlm.errors import UserError
from budgetlm.exporters.hf import to_hf, verify_parity
from budgetlm.exporters.hf_families import EXPORT_NOTE
from budgetlm.exporters.hf_import import from_hf
from budgetlm.exporters.writers import export_hf
from budgetlm.models.load import load as load_any
from budgetlm.models import Model, SequenceClassificationHead, build_mlm_model
from budgetlm.models.config import HeadConfig, ModelConfig
from budgetlm.models.io import load_model, model_meta, save_model
from budgetlm.tokenizer import CLS, PAD

# ModelConfig fields that pick a transformers family (type_vocab_size varies to cover the zero-row path)
ARCHS = {
    "bert": dict(norm_position="post", position="learned", glu=False, bias=True, embedding_norm=True,
                 type_vocab_size=2),
    "bert-gelu_tanh": dict(norm_position="post", position="learned", glu=False, bias=True, embedding_norm=True,
                           type_vocab_size=0, activation="gelu_tanh"),
    "bert-relu2": dict(norm_position="post", position="learned", glu=False, bias=True, embedding_norm=True,
                       type_vocab_size=0, activation="relu2"),
    "roberta-prelayernorm": dict(norm_position="pre", position="learned", glu=False, bias=True, embedding_norm=True,
                                 type_vocab_size=0),
    "modernbert": dict(norm_position="pre", position="rope", glu=True, bias=False, embedding_norm=True, first_block_norm=False,
                       type_vocab_size=0, rope_theta=500.0),
}
TANH_CLS = HeadConfig(pooling="cls", activation="tanh", norm=False)

# case id -> (arch, kind, head)
CASES = {
    "bert-mlm": ("bert", "mlm", None),
    "bert-cls": ("bert", "classifier", TANH_CLS),
    "bert_gelu_tanh-mlm": ("bert-gelu_tanh", "mlm", None),
    "bert_relu2-mlm": ("bert-relu2", "mlm", None),
    "roberta-mlm": ("roberta-prelayernorm", "mlm", None),
    "roberta-cls": ("roberta-prelayernorm", "classifier", TANH_CLS),
    "modernbert-mlm": ("modernbert", "mlm", None),
    "modernbert-cls": ("modernbert", "classifier", HeadConfig(pooling="cls", activation="gelu", norm=True)),
    "modernbert-mean": ("modernbert", "classifier", HeadConfig(pooling="mean", activation="silu", norm=True)),
}
LABELS = ["negative", "neutral", "positive"]

TEXTS = ["the cat sat on the mat", "a dog", "big red bird flew over the green house quickly", "the small tree"]
MODERNBERT_CASES = [c for c in CASES if CASES[c][0] == "modernbert"]


def hf_batch(out, kind):
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    auto = AutoModelForMaskedLM if kind == "mlm" else AutoModelForSequenceClassification
    hf_model = auto.from_pretrained(out).eval()
    batch = dict(AutoTokenizer.from_pretrained(out)(TEXTS, padding=True, truncation=True, return_tensors="pt"))
    if hf_model.config.model_type != "modernbert":  # ModernBERT has no segment embedding
        batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    return hf_model, batch


def budgetlm_logits(model, kind, batch):
    """Our forward, written out here rather than borrowed from the code under test."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    h = model.encoder(ids, torch.zeros_like(ids), mask)  # (B, T, D)
    if kind == "mlm":  # full-vocab logits at every non-pad position
        return model.heads["mlm"](h[mask.bool()])  # (N, V)
    return model.heads["cls"](h, mask)  # (B, num_labels)


@torch.no_grad()
def max_diff(model, hf_model, kind, batch) -> float:
    theirs = hf_model(**batch).logits
    if kind == "mlm":
        theirs = theirs[batch["attention_mask"].bool()]
    ours = budgetlm_logits(model, kind, batch)
    assert ours.shape == theirs.shape
    return (ours - theirs).abs().max().item()


def tiny_config(arch: str, vocab_size: int) -> ModelConfig:
    cfg = ModelConfig(vocab_size=vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq_len=16, **ARCHS[arch])
    cfg.validate()
    return cfg


def tiny_model(cfg: ModelConfig, kind: str, head: HeadConfig | None, seed: int = 0) -> tuple[Model, dict]:
    """Initialised as usual, then every parameter nudged by noise so no LayerNorm is trivially 1 / 0."""
    torch.manual_seed(seed)
    if kind == "mlm":
        model = build_mlm_model(cfg)
        meta = model_meta(model, "mlm")
    else:
        model = Model(cfg, {"cls": SequenceClassificationHead(cfg, head, len(LABELS))})
        meta = model_meta(model, "classifier", head=dataclasses.asdict(head), labels=list(LABELS))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval(), meta


@pytest.fixture(scope="module")
def saved_model(tokenizer_file, tmp_path_factory):
    """case id -> (model, meta, budgetlm model dir), built once."""
    vocab_size = Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()
    cache = {}

    def make(case: str):
        if case not in cache:
            arch, kind, head = CASES[case]
            model, meta = tiny_model(tiny_config(arch, vocab_size), kind, head)
            path = save_model(model, tmp_path_factory.mktemp(case) / "model", meta, tokenizer_file)
            cache[case] = (model, meta, path)
        return cache[case]

    return make


@pytest.fixture(scope="module")
def exported(saved_model):
    """case id -> (model, meta, budgetlm dir, transformers export dir), exported once.

    verify=False: these tests compare logits themselves (the self-check has its own test below).
    """
    cache = {}

    def make(case: str):
        if case not in cache:
            model, meta, src = saved_model(case)
            cache[case] = (model, meta, src, export_hf(src, src.parent / "hf", verify=False))
        return cache[case]

    return make


# ----------------------------------------------------------------------------------------------- parity

@pytest.mark.parametrize("case", list(CASES))
def test_export_loads_with_auto_classes_and_matches_logits(case, exported, tokenizer_file):
    model, meta, _, out = exported(case)
    arch, kind, _ = CASES[case]
    hf_model, batch = hf_batch(out, kind)

    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert mask[:, 0].all() and not mask[:, -1].all(), "expected a right-padded batch"
    ours_tok = Tokenizer.from_file(str(tokenizer_file))
    for row, m, text in zip(ids, mask, TEXTS):  # the exported tokenizer encodes like ours
        assert row[m.bool()].tolist() == ours_tok.encode(text).ids
        assert row[0] == CLS and (row[~m.bool()] == PAD).all()

    assert max_diff(model, hf_model, kind, batch) <= 1e-4


@pytest.mark.parametrize("case", MODERNBERT_CASES)
def test_modernbert_export_matches_budgetlm_forward(case, exported):
    model, _, _, out = exported(case)
    hf_model, batch = hf_batch(out, CASES[case][1])
    diff = max_diff(model, hf_model, CASES[case][1], batch)
    assert diff <= 1e-4, f"max abs diff {diff:.3g}"


def test_export_self_check_passes_and_catches_a_wrong_weight(saved_model):
    model, meta, _ = saved_model("bert-mlm")
    hf_model = to_hf(model, meta)  # verify=True: the probe batch agrees
    assert not hf_model.training
    with torch.no_grad():
        hf_model.bert.encoder.layer[1].attention.self.key.weight.mul_(-1)
    with pytest.raises(UserError, match="does not reproduce"):
        verify_parity(model, hf_model, "mlm")


def test_export_directory_contents(saved_model, tmp_path):
    _, meta, src = saved_model("roberta-cls")
    out = export_hf(src, tmp_path / "hf")
    note = json.loads((out / EXPORT_NOTE).read_text())
    assert note["family"] == "roberta-prelayernorm" and note["kind"] == "classifier"
    assert note["source"] == str(src.resolve()) and note["budgetlm_version"]
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["RobertaPreLayerNormForSequenceClassification"]
    assert config["id2label"] == {str(i): label for i, label in enumerate(meta["labels"])}
    assert (out / "model.safetensors").is_file() and not (out / "pytorch_model.bin").exists()
    assert not out.with_name(out.name + ".tmp").exists()

    # re-exporting over an earlier export replaces it; an unrelated directory is never replaced
    export_hf(saved_model("bert-mlm")[2], out)
    assert json.loads((out / EXPORT_NOTE).read_text())["family"] == "bert"
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not an earlier export"):
        export_hf(src, other)
    assert (other / "notes.txt").read_text() == "keep me"


# ----------------------------------------------------------------------------------------------- import

@pytest.mark.parametrize("case", list(CASES))
def test_from_hf_round_trip_is_exact(case, exported):
    model, meta, _, out = exported(case)
    back, back_meta = from_hf(out)
    assert dataclasses.asdict(back.cfg) == dataclasses.asdict(model.cfg)
    assert back_meta["format"] == "budgetlm" and back_meta["kind"] == meta["kind"]
    assert back_meta.get("labels") == meta.get("labels") and back_meta.get("head") == meta.get("head")
    state = back.state_dict()
    assert state.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value), key
    batch = {"input_ids": torch.tensor([[CLS, 10, 11, 12, 3], [CLS, 13, 3, PAD, PAD]])}
    batch["attention_mask"] = (batch["input_ids"] != PAD).long()
    with torch.no_grad():
        assert torch.equal(budgetlm_logits(back, meta["kind"], batch), budgetlm_logits(model, meta["kind"], batch))


@pytest.mark.parametrize("arch, key", [("bert", "attention_probs_dropout_prob"), ("modernbert", "attention_dropout")])
def test_attention_dropout_of_its_own_survives_export_and_import(arch, key, tokenizer_file, tmp_path):
    vocab_size = Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()
    cfg = dataclasses.replace(tiny_config(arch, vocab_size), dropout=0.1, attention_dropout=0.0)
    model, meta = tiny_model(cfg, "mlm", None)
    out = export_hf(save_model(model, tmp_path / "model", meta, tokenizer_file), tmp_path / "hf", verify=False)
    assert json.loads((out / "config.json").read_text())[key] == 0.0
    back, _ = from_hf(out)
    assert (back.cfg.dropout, back.cfg.attention_dropout, back.cfg.attention_dropout_p) == (0.1, 0.0, 0.0)


def test_imported_model_saves_as_a_budgetlm_dir(exported, tmp_path):
    model, meta, _, out = exported("modernbert-mean")
    back, back_meta = from_hf(out)
    save_model(back, tmp_path / "again", back_meta, out / "tokenizer.json")
    again, again_meta = load_model(tmp_path / "again")
    assert again_meta["head"] == meta["head"] and again_meta["labels"] == meta["labels"]


def test_load_any_accepts_both_formats(exported):
    model, meta, src, out = exported("bert-cls")
    for path in (src, out):
        loaded, loaded_meta, tok = load_any(path)
        assert tok == path / "tokenizer.json" and tok.is_file()
        assert loaded_meta["kind"] == "classifier" and loaded_meta["labels"] == meta["labels"]
        assert torch.equal(loaded.heads["cls"].classifier.weight, model.heads["cls"].classifier.weight)


def test_pytorch_model_bin_is_refused_without_unpickling(exported, tmp_path, monkeypatch):
    _, _, _, out = exported("bert-mlm")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(out / name, legacy / name)
    (legacy / "pytorch_model.bin").write_bytes(b"\x80\x04 not really a pickle")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load must never be called"))
    with pytest.raises(UserError, match="pytorch_model.bin"):
        from_hf(legacy)
    with pytest.raises(UserError, match="safetensors"):
        load_any(legacy)


def test_from_hf_refuses_what_budgetlm_cannot_represent(exported, tmp_path):
    _, _, _, out = exported("modernbert-mlm")
    local = tmp_path / "local"
    shutil.copytree(out, local)
    config = json.loads((local / "config.json").read_text())
    config["layer_types"] = ["full_attention", "sliding_attention"]
    (local / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="sliding-window"):
        from_hf(local)

    config.update(layer_types=["full_attention"] * 2, model_type="deberta-v2")
    (local / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="not supported.*bert"):
        from_hf(local)


# ----------------------------------------------------------------------------------------------- no family

@pytest.mark.parametrize("arch, kind, head, expected", [
    (dict(norm_position="post", position="rope"), "mlm", None,
     ["bert needs model.position='learned'", "modernbert needs model.norm_position='pre'"]),
    (dict(norm_position="pre", position="learned", glu=True), "mlm", None,
     ["roberta-prelayernorm needs model.glu=False", "modernbert needs model.position='rope'"]),
    (dict(norm_position="post", embedding_norm=False), "mlm", None, ["bert needs model.embedding_norm=True"]),
    (dict(norm_position="pre", position="rope", glu=True, bias=False, embedding_norm=True, first_block_norm=False, type_vocab_size=2),
     "mlm", None, ["modernbert needs model.type_vocab_size=0"]),
    (dict(norm_position="post"), "classifier", HeadConfig(pooling="mean"), ["bert needs head.pooling='cls'"]),
    (dict(norm_position="pre", position="rope", glu=True, bias=False, embedding_norm=True, first_block_norm=False, type_vocab_size=0),
     "classifier", TANH_CLS, ["modernbert needs head.norm=True"]),
])
def test_unsupported_options_raise_a_helpful_error(arch, kind, head, expected, tmp_path, tokenizer_file):
    cfg = ModelConfig(vocab_size=50, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq_len=16, **arch)
    model, meta = tiny_model(cfg, kind, head)
    with pytest.raises(UserError, match="no transformers class matches") as info:
        to_hf(model, meta)
    for text in expected:
        assert text in str(info.value)

    src = save_model(model, tmp_path / "model", meta, tokenizer_file)
    with pytest.raises(UserError, match="no transformers class matches"):
        export_hf(src, tmp_path / "hf")
    assert not (tmp_path / "hf").exists() and not (tmp_path / "hf.tmp").exists()
