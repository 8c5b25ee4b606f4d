"""Embedding models export as sentence-transformers directories whose `encode` gives `budgetlm embed`'s vectors."""

import json
import sys

import pytest
import torch
from tokenizers import Tokenizer

from budgetlm.errors import UserError
from budgetlm.exporters import sentence_transformers as st_export
from budgetlm.exporters.hf_families import EXPORT_NOTE
from budgetlm.exporters.writers import export_hf
from budgetlm.models.load import load as load_any
from budgetlm.models import EmbeddingHead, Model
from budgetlm.models.config import ModelConfig
from budgetlm.models.io import model_meta, save_model
from budgetlm.tasks.embedding import embed, encode_ids
from budgetlm.tokenizer import load_tokenizer

import sentence_transformers  # installed by `make test` (the embeddings extra); its absence is tested by monkeypatching

ARCHS = {  # ModelConfig fields that pick the backbone's transformers family
    "bert": dict(norm_position="post", position="learned", glu=False, bias=True, embedding_norm=True, type_vocab_size=2),
    "roberta-prelayernorm": dict(norm_position="pre", position="learned", glu=False, bias=True, embedding_norm=True,
                                 type_vocab_size=0),
    "modernbert": dict(norm_position="pre", position="rope", glu=True, bias=False, embedding_norm=True,
                       first_block_norm=False, type_vocab_size=0, rope_theta=500.0),
}
# head id -> (pooling, projection dim, all-but-the-top directions, activation after the projection)
HEADS = {"mean-proj-abtt": ("mean", 24, 3, "identity"), "cls": ("cls", 0, 0, "identity"),
         "mean-plain": ("mean", 0, 0, "identity"), "cls-tanh-abtt": ("cls", 24, 2, "tanh")}  # the last: LaBSE's Dense
TEXTS = ["the cat sat on the mat", "a dog", "big red bird flew over the green house quickly", "the small tree",
         "Tree HOUSE, 42 birds!"]


def tiny_embedder(arch: str, head_id: str, vocab_size: int, seed: int = 0) -> tuple[Model, dict]:
    cfg = ModelConfig(vocab_size=vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_seq_len=16, **ARCHS[arch])
    cfg.validate()
    pooling, dim, k, activation = HEADS[head_id]
    torch.manual_seed(seed)
    model = Model(cfg, {"embed": EmbeddingHead(cfg, pooling, dim, activation=activation)})
    with torch.no_grad():  # every parameter nudged, so no LayerNorm is trivially 1 / 0
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    head = model.heads["embed"]
    if k:
        out = dim or cfg.d_model
        components = torch.linalg.qr(torch.randn(out, k))[0].T  # (k, out), orthonormal rows
        head.set_top_components(0.1 * torch.randn(out), components)
    meta = model_meta(model, "embedder", embedding={"pooling": pooling, "dim": dim, "top_pcs": head.top_pcs,
                                                    "activation": activation})
    return model.eval(), meta


@pytest.fixture(scope="module")
def exported(tokenizer_file, tmp_path_factory):
    """(arch, head id) -> (model, budgetlm dir, export dir), exported once (with the export's own check)."""
    vocab_size = Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()
    cache = {}

    def make(arch: str, head_id: str):
        if (arch, head_id) not in cache:
            model, meta = tiny_embedder(arch, head_id, vocab_size)
            src = save_model(model, tmp_path_factory.mktemp(f"{arch}-{head_id}") / "model", meta, tokenizer_file)
            cache[arch, head_id] = (model, src, export_hf(src, src.parent / "st"))
        return cache[arch, head_id]

    return make


@pytest.mark.parametrize("head_id", list(HEADS))
@pytest.mark.parametrize("arch", list(ARCHS))
def test_sentence_transformers_encode_equals_budgetlm_embed(arch, head_id, exported, tokenizer_file):
    model, src, out = exported(arch, head_id)
    st = sentence_transformers.SentenceTransformer(str(out), device="cpu", local_files_only=True)
    theirs = st.encode(TEXTS, convert_to_tensor=True).float()  # its own tokenizer, padding and pipeline
    ours = embed(model, encode_ids(load_tokenizer(tokenizer_file), TEXTS, model.cfg.max_seq_len))
    assert theirs.shape == ours.shape == (len(TEXTS), HEADS[head_id][1] or model.cfg.d_model)
    assert torch.allclose(theirs, ours, atol=1e-5)
    assert torch.allclose(theirs.norm(dim=-1), torch.ones(len(TEXTS)), atol=1e-5)


def test_export_note_and_pipeline_layout(exported):
    _, _, out = exported("modernbert", "mean-proj-abtt")
    note = json.loads((out / EXPORT_NOTE).read_text())
    assert note["kind"] == "embedder" and note["architecture"] == "SentenceTransformer(ModernBertModel)"
    names = [m["type"].rsplit(".", 1)[-1] for m in json.loads((out / "modules.json").read_text())]
    assert names == ["Transformer", "Pooling", "Dense", "Normalize", "Dense", "Normalize"]
    assert not (out / "_encoder").exists()
    from transformers import AutoModel

    assert type(AutoModel.from_pretrained(str(out))).__name__ == "ModernBertModel"  # the encoder alone loads too


def test_all_but_the_top_becomes_one_affine_layer():
    cfg = ModelConfig(vocab_size=20, d_model=8, n_layers=1, n_heads=2, d_ff=16, max_seq_len=8)
    head = EmbeddingHead(cfg, "mean", 6)
    u = torch.linalg.qr(torch.randn(6, 2))[0].T
    head.set_top_components(torch.randn(6), u)
    hidden, mask = torch.randn(3, 4, 8), torch.ones(3, 4)
    (w1, b1), (w2, b2) = st_export.affine_of_head(head)
    x = torch.nn.functional.normalize(hidden.mean(1) @ w1.T + b1, dim=-1)
    assert torch.allclose(x @ w2.T + b2, head(hidden, mask), atol=1e-6)


def test_a_wrong_pipeline_is_caught_and_nothing_is_left(exported, tmp_path, monkeypatch):
    _, src, _ = exported("bert", "mean-proj-abtt")
    real = st_export.affine_of_head
    monkeypatch.setattr(st_export, "affine_of_head", lambda head: [(w, b + 0.5) for w, b in real(head)])
    with pytest.raises(UserError, match="does not reproduce its embeddings"):
        export_hf(src, tmp_path / "st")
    assert not (tmp_path / "st").exists() and not (tmp_path / "st.tmp").exists()


def test_missing_sentence_transformers_is_a_clear_error(exported, tmp_path, monkeypatch):
    _, src, _ = exported("bert", "cls")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(UserError, match=r"pip install 'budgetlm\[embeddings\]'"):
        export_hf(src, tmp_path / "st")
    assert not (tmp_path / "st.tmp").exists()


@pytest.mark.parametrize("arch, head_id, kind", [("modernbert", "mean-proj-abtt", "embedder"), ("bert", "cls", "embedder"),
                                              ("bert", "cls-tanh-abtt", "embedder"),
                                              ("roberta-prelayernorm", "mean-plain", "encoder")])
def test_an_export_reads_back_with_its_head(arch, head_id, kind, exported, tokenizer_file):
    """budgetlm reads the pipeline back into an EmbeddingHead (a plain mean pipeline stays a bare encoder, which
    `embed` mean-pools): the model it loads embeds like the one that was exported."""
    model, _, out = exported(arch, head_id)
    back, meta, _ = load_any(out)
    assert meta["kind"] == kind
    if kind == "embedder":
        pooling, dim, k, activation = HEADS[head_id]
        assert meta["embedding"] == {"pooling": pooling, "dim": dim, "top_pcs": k, "activation": activation}
    ids = encode_ids(load_tokenizer(tokenizer_file), TEXTS, model.cfg.max_seq_len)
    assert torch.allclose(embed(back, ids), embed(model, ids), atol=1e-5)


def test_the_teacher_refuses_a_pipeline_it_would_not_reproduce(exported):
    from budgetlm.tasks.teacher import Teacher

    _, _, out = exported("modernbert", "mean-proj-abtt")
    with pytest.raises(UserError, match="the teacher is run as its transformer.*adds an embedding head"):
        Teacher(str(out))


def _write_pipeline(d, modules: list[tuple[str, str]], pooling: dict | None = None):
    (d / "modules.json").write_text(json.dumps([{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{name}"}
                                                for i, (name, path) in enumerate(modules)]))
    if pooling is not None:
        (d / "1_Pooling").mkdir(exist_ok=True)
        (d / "1_Pooling" / "config.json").write_text(json.dumps(pooling))


def test_read_pipeline_reads_old_and_new_pooling_configs_and_refuses_the_rest(tmp_path):
    assert st_export.read_pipeline(tmp_path) is None  # not a sentence-transformers dir
    plain = [("Transformer", ""), ("Pooling", "1_Pooling")]
    for pooling, expected in [({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, None),
                              ({"pooling_mode": "mean"}, None),
                              ({"pooling_mode_cls_token": True}, {"pooling": "cls", "dim": 0, "top_pcs": 0, "activation": "identity"}),
                              ({"pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}, "pools with max"),
                              ({"pooling_mode": "lasttoken"}, "pools with lasttoken")]:
        _write_pipeline(tmp_path, plain + [("Normalize", "2_Normalize")], pooling)
        if isinstance(expected, str):
            with pytest.raises(UserError, match=expected):
                st_export.read_pipeline(tmp_path)
        else:
            got = st_export.read_pipeline(tmp_path)
            assert (got if got is None else got[0]) == expected
    _write_pipeline(tmp_path, plain + [("Dense", "2_Dense")], {"pooling_mode": "mean"})  # no weights there
    with pytest.raises(UserError, match="cannot read the Dense module"):
        st_export.read_pipeline(tmp_path)
    _write_pipeline(tmp_path, plain + [("Normalize", "2"), ("Normalize", "3"), ("Dense", "4")])
    with pytest.raises(UserError, match="budgetlm cannot represent"):
        st_export.read_pipeline(tmp_path)
    (tmp_path / "modules.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot be read"):
        st_export.read_pipeline(tmp_path)


def test_a_dense_module_that_is_not_all_but_the_top_is_refused(tmp_path):
    from safetensors.torch import save_file

    _write_pipeline(tmp_path, [("Transformer", ""), ("Pooling", "1_Pooling"), ("Normalize", "2"), ("Dense", "3_Dense")],
                    {"pooling_mode": "mean"})
    (tmp_path / "3_Dense").mkdir()
    (tmp_path / "3_Dense" / "config.json").write_text(json.dumps({"activation_function": "torch.nn.modules.linear.Identity"}))
    save_file({"linear.weight": torch.randn(4, 4), "linear.bias": torch.zeros(4)}, str(tmp_path / "3_Dense" / "model.safetensors"))
    with pytest.raises(UserError, match="not all-but-the-top"):
        st_export.read_pipeline(tmp_path)
    save_file({"linear.weight": torch.randn(4, 6), "linear.bias": torch.zeros(4)}, str(tmp_path / "3_Dense" / "model.safetensors"))
    with pytest.raises(UserError, match="not all-but-the-top"):  # not square
        st_export.read_pipeline(tmp_path)
    (tmp_path / "3_Dense" / "config.json").write_text(json.dumps({"activation_function": "torch.nn.modules.activation.Tanh"}))
    with pytest.raises(UserError, match="activation torch.nn.modules.activation.Tanh"):
        st_export.read_pipeline(tmp_path)
    # a first Dense (the projection) may be identity or tanh; another activation is refused
    _write_pipeline(tmp_path, [("Transformer", ""), ("Pooling", "1_Pooling"), ("Dense", "3_Dense")], {"pooling_mode": "cls"})
    (tmp_path / "3_Dense" / "config.json").write_text(json.dumps({"activation_function": "torch.nn.modules.activation.ReLU"}))
    with pytest.raises(UserError, match="activation torch.nn.modules.activation.ReLU"):
        st_export.read_pipeline(tmp_path)
