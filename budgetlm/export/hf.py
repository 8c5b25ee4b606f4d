"""Hugging Face `transformers` export and import: budgetlm models <-> stock transformers classes.

No custom code on either side: an export loads offline with `AutoModelForMaskedLM` /
`AutoModelForSequenceClassification` / `AutoModelForCausalLM` / `AutoModelForSeq2SeqLM` and `AutoTokenizer`.
Encoder-decoders export to BART / mBART (export/hf_seq2seq.py; export only). Each architecture maps onto one *family*:

    bert                  post-LN, learned positions, plain MLP, biases    BertFor{MaskedLM,SequenceClassification}
    roberta-prelayernorm  pre-LN, learned positions, plain MLP, biases     RobertaPreLayerNormFor...
    modernbert            pre-LN, RoPE, GLU MLP, no biases, no segments    ModernBertFor...
    gpt2                  decoder: learned positions, LayerNorm, biases    GPT2LMHeadModel
    llama                 decoder: RoPE, RMSNorm, SwiGLU, no biases        LlamaForCausalLM

`FAMILIES` (export/hf_families.py) is the registry: per family, the ModelConfig/HeadConfig values it needs, the transformers config it
builds (and reads back), and a list of weight `Rule`s. The same rules drive both directions, so export and
import cannot drift apart. `to_hf` checks its result on a probe batch, because a wrong mapping gives a model
that loads fine and predicts garbage.

Weights are read with safetensors only; a `pytorch_model.bin` is refused unless the caller passes `trust_pickle`
(the CLI's --trust-pickle), and even then only tensors are unpickled (`torch.load(weights_only=True)`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

import budgetlm
from budgetlm.atomic import replace_dir, replacing
from budgetlm.config import from_dict
from budgetlm.errors import UserError
from budgetlm.models import Model
from budgetlm.models.config import HeadConfig, ModelConfig
from budgetlm.runtime import check_fits_in_memory
from budgetlm.models.io import (
    CONFIG, TOKENIZER, WEIGHTS, build_from_meta, model_meta, resolve_model_dir,
)
from budgetlm.models.kinds import KINDS as MODEL_KINDS
from budgetlm.models.load import load
from budgetlm.data.cache import default_cache_dir
from budgetlm.export.hf_families import EXPORT_NOTE, FAMILIES, Family, head_of, select_family
from budgetlm.tokenizer import CLS, MASK, PAD, SEP, conform_tokenizer_json, save_for_transformers


# ----------------------------------------------------------------------------------------------- budgetlm -> HF

def _export_state(model: Model, family: Family, kind: str) -> dict[str, torch.Tensor]:
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    if kind == "encoder":  # the bare backbone: any head stays behind (an embedder's goes to sentence-transformers)
        ours = {k: v for k, v in ours.items() if not k.startswith("heads.")}
    cfg, out, used = model.cfg, {}, set()
    for r in family.rules(cfg, kind):
        t = ours.get(r.ours)
        if r.ours is not None and t is None:
            raise RuntimeError(f"export rule refers to a missing budgetlm weight {r.ours!r}")
        used.add(r.ours)
        if r.how == "qkv":
            out.update(zip(r.hf, t.chunk(len(r.hf), dim=0)))
        elif r.how == "T":
            out[r.hf] = t.T
        elif r.how == "pos":  # (T, D) -> (offset + T, D); rows below offset are never looked up for real tokens
            out[r.hf] = torch.cat([t.new_zeros(r.offset, t.shape[1]), t])
        elif r.how == "type" and t is None:  # no segment embedding: one zero row keeps HF's sum unchanged
            out[r.hf] = ours["encoder.tok_emb.weight"].new_zeros(1, cfg.d_model)
        else:
            out[r.hf] = t
    left = sorted(set(ours) - used)
    if left:  # a weight we do not export would silently change the outputs
        raise RuntimeError(f"{family.name} export leaves budgetlm weights unmapped: {left[:5]}")
    if kind == "encoder":  # a bare backbone's keys lack the prefix its *For* classes give them
        out = {k.removeprefix(family.base_prefix): v for k, v in out.items()}
    return {k: v.contiguous().clone() for k, v in out.items()}


def hf_config(model: Model, meta: dict):
    """(family, transformers config) for `model`; UserError if no family matches."""
    import transformers

    cfg, kind, head = model.cfg, meta["kind"], head_of(meta)
    family = select_family(cfg, kind, head)
    kwargs = dict(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, intermediate_size=cfg.d_ff, initializer_range=cfg.init_std,
        pad_token_id=cfg.pad_token_id, cls_token_id=CLS, sep_token_id=SEP, mask_token_id=MASK,
        tie_word_embeddings=True,  # our MLM head projects with the input embedding
    )
    kwargs.update(family.hf_config(cfg, head))
    if kind == "classifier":
        labels = list(meta["labels"])
        kwargs.update(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    return family, getattr(transformers, family.config_class)(**kwargs)


def to_hf(model: Model, meta: dict, verify: bool = True):
    """Build the matching transformers model with `model`'s weights, in eval mode.

    With `verify`, both models run on a small padded probe batch and must agree to ~1e-4 (UserError otherwise).
    """
    import transformers

    family, config = hf_config(model, meta)
    kind = meta["kind"]
    hf = getattr(transformers, family.classes[kind])(config)
    if kind == "encoder" and getattr(hf, "pooler", None) is not None:
        hf.pooler = None  # BertModel's [CLS] pooler: no budgetlm weights, and sentence embeddings do not use it
    hf.load_state_dict(_export_state(model, family, kind), strict=True)  # every HF parameter filled
    if kind == "mlm" or (kind == "clm" and model.cfg.tie_embeddings):
        # save_pretrained drops the tied output weight: it must *be* the input embedding
        assert hf.get_output_embeddings().weight is hf.get_input_embeddings().weight, "decoder is not tied"
    hf.eval()
    if verify:
        verify_parity(model, hf, kind, token_types=family.type_key is not None)
    return hf


@torch.no_grad()
def verify_parity(model: Model, hf, kind: str, token_types: bool = True, atol: float = 1e-4) -> float:
    """Compare logits on a right-padded probe batch; return the max abs diff, or raise UserError."""
    cfg = model.cfg
    T = min(cfg.max_seq_len, 8)
    g = torch.Generator().manual_seed(0)
    low = MASK + 1 if cfg.vocab_size > MASK + 1 else 0  # ordinary tokens (RoBERTa's position ids skip pad ids)
    ids = torch.randint(low, cfg.vocab_size, (2, T), generator=g)  # (2, T)
    ids[:, 0] = CLS
    mask = torch.ones(2, T, dtype=torch.long)
    if T > 2:
        ids[1, T - 2:], mask[1, T - 2:] = cfg.pad_token_id, 0
    kwargs = dict(input_ids=ids, attention_mask=mask)
    if token_types:
        kwargs["token_type_ids"] = torch.zeros_like(ids)
    was_training = model.training
    model.eval()
    try:
        out = hf(**kwargs)
        theirs = out.last_hidden_state if kind == "encoder" else out.logits
        ours = budgetlm_logits(model, kind, ids, mask)
    finally:
        model.train(was_training)
    if kind in ("mlm", "clm", "encoder"):
        theirs = theirs[mask.bool()]
    diff = (ours - theirs).abs().max().item()
    if not diff <= atol * max(1.0, ours.abs().max().item()):
        raise UserError(
            f"the {type(hf).__name__} built from this model does not reproduce its logits (max abs diff "
            f"{diff:.3g} on a probe batch); it would change the model's predictions, so it is not exported"
        )
    return diff


def budgetlm_logits(model: Model, kind: str, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MLM, CLM: (N, V) logits at the N positions where mask == 1; encoder: (N, D) hidden states there;
    classifier: (B, num_labels)."""
    if kind == "clm":  # right padding: causal attention never reaches the pads after a real token
        return model.heads["lm"](model.decoder(ids)[mask.bool()])
    h = model.encoder(ids, None, mask)  # (B, T, D); no token types = segment 0, as HF's zeros
    if kind == "encoder":
        return h[mask.bool()]
    if kind == "mlm":
        return model.heads["mlm"](h[mask.bool()])
    return model.heads["cls"](h, mask)


def export_hf(model_dir: str | Path, out_dir: str | Path, verify: bool = True, trust_pickle: bool = False) -> Path:
    """budgetlm run or model dir -> transformers dir (config.json, model.safetensors, tokenizer files), atomically.

    A transformers dir is accepted too and goes through the import first: with `trust_pickle`, this turns a
    legacy pytorch_model.bin into model.safetensors (without it, the pickle is refused)."""
    given, out = Path(model_dir), Path(out_dir)
    if not given.exists():
        raise UserError("model path not found", path=str(given))
    src = resolve_model_dir(given)
    if src is None and not (given.is_dir() and (given / CONFIG).is_file()):
        raise UserError("not a budgetlm run or model directory (needs [model/]config.json + model.safetensors), "
                        "nor a transformers export", path=str(given))
    if src is not None and not (src / TOKENIZER).is_file():
        raise UserError(f"no {TOKENIZER} beside the model; an export needs the tokenizer", path=str(src))
    src = src or given
    if out.resolve() == src.resolve():
        raise UserError("the export directory must differ from the model directory", path=str(out))
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / EXPORT_NOTE).is_file())):
        raise UserError("exists and is not an earlier export; refusing to replace it", path=str(out))
    model, meta, tok_file = load(src, trust_pickle)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        family_name, architecture = _write_export(model, meta, tok_file, tmp, verify)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    note = {
        "source": str(src.resolve()),
        "source_budgetlm_version": meta.get("budgetlm_version"),
        "budgetlm_version": budgetlm.__version__,
        "family": family_name,
        "architecture": architecture,
        "kind": meta["kind"],
    }
    (tmp / EXPORT_NOTE).write_text(json.dumps(note, indent=2))
    replace_dir(tmp, out)
    return out


def _export_sentence_transformers(model: Model, meta: dict, tok_file: Path, out: Path, verify: bool) -> tuple[str, str]:
    """A sentence-transformers pipeline around the bare encoder."""
    from budgetlm.export.sentence_transformers import save_sentence_transformer

    return save_sentence_transformer(model, tok_file, out, verify=verify)


def _export_bart(model, meta: dict, tok_file: Path, out: Path, verify: bool) -> tuple[str, str]:
    """Encoder-decoders map onto BART / mBART (export/hf_seq2seq.py)."""
    from budgetlm.export import hf_seq2seq

    hf = hf_seq2seq.to_hf(model, verify=verify)
    save_hf_dir(hf, tok_file, out, model.cfg.max_seq_len, token_types=False)
    return hf_seq2seq.select_family(model.cfg).name, type(hf).__name__


def _export_transformers(model: Model, meta: dict, tok_file: Path, out: Path, verify: bool) -> tuple[str, str]:
    """One of FAMILIES' transformers classes (an unexportable kind is refused by `head_of`)."""
    hf = to_hf(model, meta, verify=verify)
    family = select_family(model.cfg, meta["kind"], head_of(meta))
    save_hf_dir(hf, tok_file, out, model.cfg.max_seq_len, decoder=meta["kind"] == "clm",
                token_types=family.type_key is not None)
    return family.name, family.classes[meta["kind"]]


# models/kinds.py `Kind.export` -> the writer; a kind without one goes to `_export_transformers`, which refuses it
EXPORTERS = {"transformers": _export_transformers, "sentence-transformers": _export_sentence_transformers,
             "bart": _export_bart}


def _write_export(model: Model, meta: dict, tok_file: Path, out: Path, verify: bool) -> tuple[str, str]:
    """Write the export of `model` into the empty dir `out`; (family name, architecture) for the export note."""
    kind = MODEL_KINDS.get(meta["kind"])
    return EXPORTERS.get(kind.export if kind else None, _export_transformers)(model, meta, tok_file, out, verify)


def save_hf_dir(hf, tok_file: Path, out: Path, max_len: int, decoder: bool = False, token_types: bool = True) -> None:
    """A transformers model and budgetlm's tokenizer -> `out` (safetensors weights, tokenizer files)."""
    hf.save_pretrained(str(out))  # safetensors
    save_for_transformers(tok_file, out, max_len, decoder=decoder)
    if not token_types:  # so `model(**tokenizer(...))` does not pass token_type_ids to ModernBERT, BART or GPT-2
        tc = out / "tokenizer_config.json"
        names = {"model_input_names": ["input_ids", "attention_mask"]}
        tc.write_text(json.dumps({**json.loads(tc.read_text()), **names}, indent=2))


# ----------------------------------------------------------------------------------------------- HF -> budgetlm

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
    from budgetlm.export.sentence_transformers import read_pipeline

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
