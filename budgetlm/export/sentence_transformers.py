"""Embedding models (`finetune --task-type embedding`, kind "embedder") -> a sentence-transformers directory.

transformers has no class for "encoder + pooling + projection", so an embedder exports as the pipeline users of
sentence embeddings load anyway, built and saved by the sentence-transformers library itself:

    Transformer   the bare encoder as its stock transformers class (BertModel, ModernBertModel, ...)
    Pooling       mean over real tokens, or [CLS] (the model's embedding.pooling)
    Dense         the projection to embedding.dim, identity activation (when the model has one)
    Normalize
    Dense         all-but-the-top (embedding.remove_top_pcs): x -> A (x - center), A = I - U^T U, as one
    Normalize     affine layer on the normalised embedding (when the model has it)

`SentenceTransformer(out).encode(texts)` then equals `budgetlm embed` (L2-normalised); the export loads the
result back with sentence-transformers and compares the two on a few sentences before it is kept.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from budgetlm.errors import UserError
from budgetlm.models import Model

PROBE_TEXTS = ("A man is playing a guitar.", "Two dogs run across a snowy field!", "The stock market fell 3% on Monday.",
               "ok")


def _st():
    """The sentence-transformers module classes (their import path moved in 6.x)."""
    try:
        import sentence_transformers
    except ImportError:
        raise UserError("exporting an embedding model needs the sentence-transformers package "
                        "(pip install 'budgetlm[embeddings]')") from None
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:
        from sentence_transformers import models as modules
    return sentence_transformers.SentenceTransformer, modules


def affine_of_head(head) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The embedding head after pooling as (weight, bias) pairs, each followed by L2 normalisation."""
    out = []
    if head.proj is not None:
        out.append((head.proj.weight.detach().float(), head.proj.bias.detach().float()))
    if head.top_pcs:
        u = head.components.float()  # (k, D), orthonormal rows
        a = torch.eye(u.shape[1]) - u.T @ u  # symmetric projector
        out.append((a, -(a @ head.center.float())))
    return out


def save_sentence_transformer(model: Model, tok_file: Path, out: Path, verify: bool = True,
                              atol: float = 1e-4) -> tuple[str, str]:
    """Write `model` (kind embedder) as a sentence-transformers directory into `out`; (family, architecture)."""
    from budgetlm.export.hf import save_hf_dir, to_hf
    from budgetlm.export.hf_families import select_family

    SentenceTransformer, modules = _st()
    family = select_family(model.cfg, "encoder")
    hf = to_hf(model, {"kind": "encoder"}, verify=verify)  # the encoder alone, checked on hidden states
    head = model.heads["embed"]
    staging = out / "_encoder"
    save_hf_dir(hf, tok_file, staging, model.cfg.max_seq_len, token_types=family.type_key is not None)
    layers = [modules.Transformer(str(staging), max_seq_length=model.cfg.max_seq_len),
              modules.Pooling(model.cfg.d_model, pooling_mode=head.pooling)]
    for w, b in affine_of_head(head):
        layers += [modules.Dense(w.shape[1], w.shape[0], bias=True, activation_function=torch.nn.Identity(),
                                 init_weight=w, init_bias=b), modules.Normalize()]
    if not isinstance(layers[-1], modules.Normalize):
        layers.append(modules.Normalize())
    SentenceTransformer(modules=layers, device="cpu").save(str(out))
    shutil.rmtree(staging)
    if verify:
        check_parity(model, tok_file, out, atol)
    return family.name, f"SentenceTransformer({family.classes['encoder']})"


@torch.no_grad()
def check_parity(model: Model, tok_file: Path, out: Path, atol: float = 1e-4) -> float:
    """Embed PROBE_TEXTS with budgetlm and with the saved sentence-transformers pipeline (each with its own
    tokenizer); UserError if they differ by more than `atol`. Returns the max abs difference."""
    from budgetlm.tasks.embedding import embed, encode_texts
    from budgetlm.tokenizer import load_tokenizer

    SentenceTransformer, _ = _st()
    texts = list(PROBE_TEXTS)
    ours = embed(model, encode_texts(load_tokenizer(tok_file), texts, model.cfg.max_seq_len))
    st = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    theirs = st.encode(texts, convert_to_tensor=True, batch_size=len(texts)).float().cpu()
    diff = (ours - theirs).abs().max().item()
    if not diff <= atol:
        raise UserError(f"the sentence-transformers pipeline built from this model does not reproduce its "
                        f"embeddings (max abs diff {diff:.3g} on {len(texts)} sentences); it is not exported")
    return diff


def pipeline_problem(model_dir: Path) -> str | None:
    """For a sentence-transformers directory (one with modules.json): what its pipeline does beyond mean pooling
    and normalisation, which is all budgetlm reproduces when it reads the transformer in it (`embed` mean-pools a
    bare encoder; the distillation teacher does the same). None for a plain transformers directory, or when the
    pipeline is only Transformer -> Pooling(mean) [-> Normalize], as all-MiniLM-L6-v2's is."""
    spec = Path(model_dir) / "modules.json"
    if not spec.is_file():
        return None
    try:
        entries = json.loads(spec.read_text())
        names = [e["type"].rsplit(".", 1)[-1] for e in entries]
        paths = [e.get("path", "") for e in entries]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        return f"its modules.json cannot be read ({e})"
    extra = [n for n in names if n not in ("Transformer", "Pooling", "Normalize")]
    if extra:
        return f"its pipeline adds {', '.join(extra)} after the transformer"
    for name, path in zip(names, paths):
        if name == "Pooling":
            try:
                cfg = json.loads((Path(model_dir) / path / "config.json").read_text())
            except (OSError, ValueError) as e:
                return f"its pooling config cannot be read ({e})"
            mode = cfg.get("pooling_mode") or [k.removeprefix("pooling_mode_").removesuffix("_tokens")
                                                for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
            if mode not in ("mean", ["mean"]):
                return f"it pools with {mode}, not the mean over tokens"
    return None
