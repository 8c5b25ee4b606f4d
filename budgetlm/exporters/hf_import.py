"""Hugging Face `transformers` import: a transformers (or sentence-transformers) directory -> a budgetlm model.

The same `FAMILIES` rules as the export (exporters/hf_families.py) drive it, so the two directions cannot drift apart.
Weights are read with safetensors only; a `pytorch_model.bin` is refused unless the caller passes `trust_pickle`
(the CLI's --trust-pickle), and even then only tensors are unpickled (`torch.load(weights_only=True)`).
models/load.py `load` calls `import_hf` for such directories.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from budgetlm.atomic import replacing
from budgetlm.config import from_dict
from budgetlm.data.cache import default_cache_dir
from budgetlm.errors import UserError
from budgetlm.exporters.hf_families import FAMILIES, Family
from budgetlm.exporters.sentence_transformers import read_pipeline
from budgetlm.models import Model
from budgetlm.models.config import HeadConfig, ModelConfig
from budgetlm.models.io import CONFIG, TOKENIZER, WEIGHTS, build_from_meta, model_meta
from budgetlm.runtime import check_fits_in_memory
from budgetlm.tokenizer import PAD, conform_tokenizer_json

PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def _read_hf_weights(path: Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    single, index = path / WEIGHTS, path / f"{WEIGHTS}.index.json"
    try:
        if single.is_file():
            return load_file(str(single))
        if index.is_file():  # sharded checkpoint
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return {k: v for shard in shards for k, v in load_file(str(path / shard)).items()}
    except Exception as e:  # safetensors raises several types for corrupt files
        raise UserError(f"cannot read weights ({e})", path=str(path)) from None
    if any((path / name).is_file() for name in PICKLED_WEIGHTS):
        if not trust_pickle:
            raise UserError(
                "only pytorch_model.bin here; budgetlm reads model.safetensors only, since loading a pickle can run "
                "arbitrary code. Pass --trust-pickle if you trust this file", path=str(path),
            )
        return _read_pickled_weights(path)
    raise UserError(f"no {WEIGHTS} here", path=str(path))


def _read_pickled_weights(path: Path) -> dict[str, torch.Tensor]:
    """pytorch_model.bin (or its shards), for --trust-pickle; even then only tensors are unpickled."""
    index = path / PICKLED_WEIGHTS[1]
    try:
        files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else [PICKLED_WEIGHTS[0]]
        state = {}
        for name in files:
            part = torch.load(path / name, map_location="cpu", weights_only=True)
            if not isinstance(part, dict) or not all(torch.is_tensor(v) for v in part.values()):
                raise ValueError("not a state dict of tensors")
            state.update(part)
        return state
    except Exception as e:  # torch.load raises many types for foreign or damaged pickles
        raise UserError(f"cannot read pickled weights ({' '.join(str(e).split()[:30])})", path=str(path)) from None


def _import_state(hf_state: dict, family: Family, cfg: ModelConfig, kind: str) -> dict[str, torch.Tensor]:
    # old BERT checkpoints name LayerNorm parameters gamma/beta
    hf_state = {k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): v
                for k, v in hf_state.items()}
    ours, used = {}, set()

    def get(key: str) -> torch.Tensor:
        if key not in hf_state:
            raise UserError(f"the checkpoint lacks weight {key!r} that a {family.classes[kind]} needs")
        used.add(key)
        return hf_state[key]

    for r in family.rules(cfg, kind):
        if r.how == "qkv":
            ours[r.ours] = torch.cat([get(k) for k in r.hf], dim=0)
        elif r.how == "T":
            ours[r.ours] = get(r.hf).T.contiguous()
        elif r.how == "pos":
            ours[r.ours] = get(r.hf)[r.offset: r.offset + cfg.max_seq_len]
        elif r.how == "type" and r.ours is None:
            get(r.hf)  # an all-zero single row (checked when choosing type_vocab_size)
        elif r.how == "tied":
            if r.hf in hf_state and not torch.equal(get(r.hf), ours[r.ours]):
                raise UserError(f"{r.hf} is not tied to {r.ours}; budgetlm's MLM head shares the input embedding")
        else:
            ours[r.ours] = get(r.hf)
    left = sorted(k for k in set(hf_state) - used if not k.startswith(family.ignore_on_import))
    if left:  # weights we would drop change the outputs
        raise UserError(f"the checkpoint has weights budgetlm cannot place: {left[:5]}")
    return ours


def from_hf(hf_dir: str | Path, trust_pickle: bool = False) -> tuple[Model, dict]:
    """transformers dir (one of FAMILIES, MaskedLM or SequenceClassification, or a bare backbone) -> (budgetlm
    Model, meta). A sentence-transformers dir around a bare backbone becomes an embedder with its pipeline's head."""
    p = Path(hf_dir)
    try:
        raw = json.loads((p / CONFIG).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read a transformers config ({e})", path=str(p / CONFIG)) from None
    if not isinstance(raw, dict):
        raise UserError("cannot read a transformers config (not a JSON object)", path=str(p / CONFIG))
    if raw.get("format") == "budgetlm":  # is_model_dir said no: the weights are missing
        raise UserError(f"a budgetlm model directory without its weights ({WEIGHTS} is missing)", path=str(p))
    if raw.get("is_encoder_decoder"):
        raise UserError(f"reading transformers encoder-decoders ({raw.get('model_type')}) back into budgetlm is not "
                        "supported; use the budgetlm model directory the export came from", path=str(p))
    embedding_head = read_pipeline(p)  # a sentence-transformers pipeline adds pooling, projection, ...
    family = FAMILIES.get(raw.get("model_type"))
    if family is None:
        raise UserError(f"model_type {raw.get('model_type')!r} is not supported; budgetlm reads: "
                        f"{', '.join(FAMILIES)}", path=str(p))
    archs = raw.get("architectures") or []
    kind = next((k for k, c in family.classes.items() if c in archs), None)
    if kind is None:
        raise UserError(f"architectures {archs} name none of: {', '.join(family.classes.values())}", path=str(p))
    hf_state = _read_hf_weights(p, trust_pickle)  # before transformers is imported: a refusal should be quick
    if kind == "encoder" and family.base_prefix:  # a bare backbone saves its keys without the prefix
        hf_state = {k if k.startswith(family.base_prefix) else family.base_prefix + k: v for k, v in hf_state.items()}

    import transformers

    hf = getattr(transformers, family.config_class).from_pretrained(str(p))
    problems = family.problems(hf, raw, kind)
    if problems:
        raise UserError(f"budgetlm cannot represent this {family.name} model: {'; '.join(problems)}", path=str(p))
    model_kw, head_kw = family.back(hf)
    common = dict(
        vocab_size=hf.vocab_size, d_model=hf.hidden_size, n_layers=hf.num_hidden_layers, n_heads=hf.num_attention_heads,
        d_ff=getattr(hf, "intermediate_size", None), init_std=hf.initializer_range, pad_token_id=hf.pad_token_id,
    )
    model_kw = {**family.needs, **common, **model_kw}  # what the family implies, what every config says, the rest
    if family.type_key:
        types = hf_state.get(family.type_key)
        if model_kw["type_vocab_size"] == 1 and types is not None and not types.any():
            model_kw["type_vocab_size"] = 0  # the zero row an export writes for "no segment embedding"
    cfg = ModelConfig(**model_kw)
    cfg.validate()
    check_fits_in_memory(cfg)  # the size check validate() did before budgetlm/runtime.py held it
    extra = {}
    if kind == "classifier":
        extra = dict(head=head_kw, labels=[hf.id2label[i] for i in range(hf.num_labels)])
        from_dict(HeadConfig, head_kw, prefix="head.").validate()
    state = _import_state(hf_state, family, cfg, kind)
    if embedding_head is not None:  # the encoder becomes an embedding model with that head
        if kind != "encoder":
            raise UserError(f"a sentence-transformers pipeline around a {family.classes[kind]}; budgetlm reads "
                            "one around a bare encoder", path=str(p))
        kind, (extra["embedding"], head_state) = "embedder", embedding_head
        state.update({f"heads.embed.{k}": v for k, v in head_state.items()})
    meta = dict(kind=kind, model=dataclasses.asdict(cfg), **extra)
    model = build_from_meta(meta)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UserError(f"weights do not fit the model ({' '.join(str(e).split()[:40])})", path=str(p)) from None
    model.eval()
    return model, model_meta(model, kind, **extra)


def import_hf(path: str | Path, trust_pickle: bool = False) -> tuple[Model, dict, Path]:
    """A transformers dir -> (model, meta, tokenizer.json path); models/load.py `load` calls it for such dirs.

    A transformers tokenizer whose special tokens are not at budgetlm's ids 0-4 (BERT's vocab has [CLS] at 101)
    is renumbered, and the embedding rows with it; the renumbered tokenizer.json is written to the cache.
    """
    p = Path(path)
    model, meta = from_hf(p, trust_pickle)
    if not (p / TOKENIZER).is_file():
        raise UserError(f"no {TOKENIZER} beside the model", path=str(p))
    return model, meta, _conformed_tokenizer(model, p / TOKENIZER)


def _conformed_tokenizer(model: Model, tok_file: Path) -> Path:
    """tokenizer.json with budgetlm's special ids (see tokenizer.conform_tokenizer_json); permutes `model`'s rows."""
    try:
        raw = tok_file.read_bytes()
        original = json.loads(raw)
        data, inv = conform_tokenizer_json(original)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise UserError(f"cannot read the tokenizer ({e})", path=str(tok_file)) from None
    if inv is None and original.get("padding") is None and original.get("truncation") is None:
        return tok_file  # already budgetlm's conventions (e.g. a budgetlm export)
    if inv is not None:
        if len(inv) > model.cfg.vocab_size:
            raise UserError(f"the tokenizer has {len(inv)} ids, the model {model.cfg.vocab_size}", path=str(tok_file))
        order = torch.tensor(inv + list(range(len(inv), model.cfg.vocab_size)))
        with torch.no_grad():
            emb = model.encoder.tok_emb.weight
            emb.copy_(emb[order])
            if "mlm" in model.heads:
                model.heads["mlm"].bias.copy_(model.heads["mlm"].bias[order])
        model.cfg.pad_token_id = PAD
    out = default_cache_dir("tokenizers") / hashlib.sha256(raw).hexdigest()[:24] / TOKENIZER
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        with replacing(out) as tmp:
            tmp.write_text(json.dumps(data))
    return out
