"""Embedding models (`finetune --task-type embedding`, kind "embedder") -> a sentence-transformers directory.

transformers has no class for "encoder + pooling + projection", so an embedder exports as the pipeline users of
sentence embeddings load anyway, built and saved by the sentence-transformers library itself:

    Transformer   the bare encoder as its stock transformers class (BertModel, ModernBertModel, ...)
    Pooling       mean over real tokens, or [CLS] (the model's embedding.pooling)
    Dense         the projection to embedding.dim, with the head's activation (identity, or tanh as in LaBSE)
    Normalize
    Dense         all-but-the-top (embedding.remove_top_pcs): x -> A (x - center), A = I - U^T U, as one
    Normalize     affine layer on the normalised embedding (when the model has it)

`SentenceTransformer(out).encode(texts)` then equals `budgetlm embed` (L2-normalised); the export loads the
result back with sentence-transformers and compares the two on a few sentences before it is kept.

Read back (`read_pipeline`, used by the transformers import), such a pipeline becomes the EmbeddingHead again;
one the head cannot represent is refused rather than silently reduced to its transformer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from budgetlm.errors import UserError
from budgetlm.exporters.hf import save_hf_dir, to_hf
from budgetlm.exporters.hf_families import select_family
from budgetlm.models import Model
from budgetlm.models.heads import EMBEDDING_ACTIVATIONS

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
    SentenceTransformer, modules = _st()
    family = select_family(model.cfg, "encoder")
    hf = to_hf(model, {"kind": "encoder"}, verify=verify)  # the encoder alone, checked on hidden states
    head = model.heads["embed"]
    staging = out / "_encoder"
    save_hf_dir(hf, tok_file, staging, model.cfg.max_seq_len, token_types=family.type_key is not None)
    layers = [modules.Transformer(str(staging), max_seq_length=model.cfg.max_seq_len),
              modules.Pooling(model.cfg.d_model, pooling_mode=head.pooling)]
    for i, (w, b) in enumerate(affine_of_head(head)):
        act = head.act if i == 0 and head.proj is not None else torch.nn.Identity()  # all-but-the-top is affine
        layers += [modules.Dense(w.shape[1], w.shape[0], bias=True, activation_function=act,
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
    from budgetlm.tasks.embedding import embed, encode_ids
    from budgetlm.tokenizer import load_tokenizer

    SentenceTransformer, _ = _st()
    texts = list(PROBE_TEXTS)
    ours = embed(model, encode_ids(load_tokenizer(tok_file), texts, model.cfg.max_seq_len))
    st = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    theirs = st.encode(texts, convert_to_tensor=True, batch_size=len(texts)).float().cpu()
    diff = (ours - theirs).abs().max().item()
    if not diff <= atol:
        raise UserError(f"the sentence-transformers pipeline built from this model does not reproduce its "
                        f"embeddings (max abs diff {diff:.3g} on {len(texts)} sentences); it is not exported")
    return diff


def _modules(model_dir: Path) -> list[tuple[str, Path]] | None:
    """[(module class name, its directory)] from modules.json, or None for a plain transformers directory."""
    spec = Path(model_dir) / "modules.json"
    if not spec.is_file():
        return None
    try:
        return [(e["type"].rsplit(".", 1)[-1], Path(model_dir) / e.get("path", "")) for e in json.loads(spec.read_text())]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise UserError(f"a sentence-transformers directory whose modules.json cannot be read ({e})",
                        path=str(spec)) from None


def _pooling_mode(path: Path) -> str:
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the pooling config ({e})", path=str(path / "config.json")) from None
    modes = cfg.get("pooling_mode") or [k.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
                                        for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    return modes if isinstance(modes, str) else "+".join(modes)


def _dense(path: Path, activations: tuple[str, ...] = ("identity",)) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(weight, bias, activation) of a Dense module with a bias and one of `activations` (names of
    EMBEDDING_ACTIVATIONS); UserError for anything else."""
    from safetensors.torch import load_file

    try:
        cfg = json.loads((path / "config.json").read_text())
        tensors = load_file(str(path / "model.safetensors"))
    except (OSError, ValueError) as e:  # a missing file, bad JSON, or not safetensors (older versions pickled)
        raise UserError(f"cannot read the Dense module ({str(e).splitlines()[0]}); budgetlm reads its weights "
                        "from model.safetensors only", path=str(path)) from None
    act = {cls.__name__: name for name, cls in EMBEDDING_ACTIVATIONS.items()}.get(
        str(cfg.get("activation_function", "")).rsplit(".", 1)[-1])
    if act not in activations or "linear.bias" not in tensors:
        allowed = " or ".join(EMBEDDING_ACTIVATIONS[a].__name__ for a in activations)
        raise UserError(f"a Dense module with activation {cfg.get('activation_function')} (bias: "
                        f"{'linear.bias' in tensors}); budgetlm's embedding head reads a Dense with a bias and "
                        f"activation {allowed} here", path=str(path))
    return tensors["linear.weight"].float(), tensors["linear.bias"].float(), act


def _top_components(a: torch.Tensor, b: torch.Tensor, path: Path, tol: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """(center, components) of all-but-the-top from its affine form x -> A x + b, A = I - U^T U, b = -A center."""
    problem = UserError("a second Dense module that is not all-but-the-top post-processing (I - U^T U, bias in its "
                        "range); budgetlm's embedding head cannot represent it", path=str(path))
    if a.ndim != 2 or a.shape[0] != a.shape[1] or b.shape != a.shape[:1]:
        raise problem
    eig, vec = torch.linalg.eigh((a + a.T) / 2)
    u = vec[:, eig < 0.5].T  # (k, D): the removed directions
    if not torch.allclose(a, torch.eye(a.shape[0]) - u.T @ u, atol=tol) or not torch.allclose(a @ b, b, atol=tol):
        raise problem
    return -b, u


def read_pipeline(model_dir: Path) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """What a sentence-transformers directory does after its transformer, as budgetlm's EmbeddingHead:
    (embedding meta {pooling, dim, top_pcs}, the head's state dict), or None when there is nothing to add
    (a plain transformers directory, or Transformer -> Pooling(mean) [-> Normalize], as all-MiniLM-L6-v2).

    Readable pipelines are the ones `save_sentence_transformer` writes: Pooling (mean or CLS), then optionally
    Dense (identity or tanh activation, as LaBSE) and Normalize, then optionally Dense (all-but-the-top) and Normalize. Anything
    else raises UserError: budgetlm would otherwise read only the transformer and change the embeddings."""
    modules = _modules(model_dir)
    if modules is None:
        return None
    names = [n for n, _ in modules]
    refuse = (f"a sentence-transformers model whose pipeline ({' -> '.join(names)}) budgetlm cannot represent; "
              "load it with sentence_transformers, or use the budgetlm model directory it was exported from")
    if names[:2] != ["Transformer", "Pooling"]:
        raise UserError(refuse, path=str(model_dir))
    pooling = _pooling_mode(modules[1][1])
    if pooling not in ("mean", "cls"):
        raise UserError(f"it pools with {pooling}, not the mean over tokens or [CLS]; " + refuse, path=str(model_dir))
    rest = list(modules[2:])
    while rest and rest[-1][0] == "Normalize":  # a final normalisation changes no cosine
        rest.pop()
    shape = [n for n, _ in rest]
    dense = [p for n, p in rest if n == "Dense"]
    if shape not in ([], ["Dense"], ["Normalize", "Dense"], ["Dense", "Normalize", "Dense"]):
        raise UserError(refuse, path=str(model_dir))
    if not dense and pooling == "mean":
        return None
    state, dim, top_pcs, activation = {}, 0, 0, "identity"
    if shape[:1] == ["Dense"]:
        w, b, activation = _dense(dense.pop(0), tuple(EMBEDDING_ACTIVATIONS))
        state.update({"proj.weight": w, "proj.bias": b})
        dim = w.shape[0]
    if dense:
        a, b, _ = _dense(dense[0])
        center, components = _top_components(a, b, dense[0])
        state.update({"center": center, "components": components})
        top_pcs = components.shape[0]
    return {"pooling": pooling, "dim": dim, "top_pcs": top_pcs, "activation": activation}, state


def pipeline_problem(model_dir: Path) -> str | None:
    """Why a sentence-transformers directory is not just its transformer, mean-pooled and normalised (what the
    distillation teacher computes), or None."""
    try:
        head = read_pipeline(model_dir)
    except UserError as e:
        return e.args[0] if e.args else str(e)
    if head is None:
        return None
    meta, _ = head
    return f"its pipeline adds an embedding head (pooling {meta['pooling']}, dim {meta['dim']}, top_pcs {meta['top_pcs']})"
