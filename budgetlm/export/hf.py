"""Hugging Face `transformers` export and import: budgetlm models <-> stock transformers classes.

No custom code on either side: an export loads offline with `AutoModelForMaskedLM` /
`AutoModelForSequenceClassification` and `AutoTokenizer`. Each architecture maps onto one *family*:

    bert                  post-LN, learned positions, plain MLP, biases    BertFor{MaskedLM,SequenceClassification}
    roberta-prelayernorm  pre-LN, learned positions, plain MLP, biases     RobertaPreLayerNormFor...
    modernbert            pre-LN, RoPE, GLU MLP, no biases, no segments    ModernBertFor...

`FAMILIES` is the registry: per family, the ModelConfig/HeadConfig values it needs, the transformers config it
builds (and reads back), and a list of weight `Rule`s. The same rules drive both directions, so export and
import cannot drift apart. `to_hf` checks its result on a probe batch, because a wrong mapping gives a model
that loads fine and predicts garbage.

Weights are read with safetensors only; nothing is unpickled (a `pytorch_model.bin` is refused).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file

import budgetlm
from budgetlm.config import HeadConfig, ModelConfig, from_dict
from budgetlm.errors import UserError
from budgetlm.models import Model
from budgetlm.models.io import CONFIG, TOKENIZER, WEIGHTS, build_from_meta, is_model_dir, load_model, model_meta
from budgetlm.tokenizer import CLS, MASK, SEP, save_for_transformers

EXPORT_NOTE = "budgetlm_export.json"
KINDS = ("mlm", "classifier")

# our activation name <-> transformers ACT2FN name (both exact: erf GELU, tanh GELU via torch)
ACT_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu", "silu": "silu", "tanh": "tanh"}
ACT_FROM_HF = {v: k for k, v in ACT_TO_HF.items()}


# ----------------------------------------------------------------------------------------------- weight rules

@dataclass(frozen=True)
class Rule:
    """One weight: our state-dict key <-> transformers key(s), converted by `how`.

    copy  same tensor
    qkv   our fused qkv (rows [q; k; v], heads contiguous in each) <-> three separate projections
    pos   our position rows 0..T-1 <-> HF rows offset..offset+T-1 (RoBERTa counts positions from pad_token_id+1)
    type  our segment embedding <-> HF token_type_embeddings; none on our side = one all-zero HF row
    tied  an HF alias of one of our tensors (the tied decoder); exported, and on import checked to be equal
    """

    ours: str | None
    hf: str | tuple[str, str, str]
    how: str = "copy"
    offset: int = 0


def _linear(ours: str, hf: str, bias: bool) -> list[Rule]:
    return [Rule(f"{ours}.weight", f"{hf}.weight")] + ([Rule(f"{ours}.bias", f"{hf}.bias")] if bias else [])


def _qkv(ours: str, hf: str, bias: bool) -> list[Rule]:
    """Our fused `ours` <-> `hf`.query / .key / .value."""
    return [
        Rule(f"{ours}.{p}", tuple(f"{hf}.{name}.{p}" for name in ("query", "key", "value")), "qkv")
        for p in (("weight", "bias") if bias else ("weight",))
    ]


BERT_TYPES = "bert.embeddings.token_type_embeddings.weight"
ROBERTA_TYPES = "roberta_prelayernorm.embeddings.token_type_embeddings.weight"


def _bert_rules(cfg: ModelConfig, kind: str) -> list[Rule]:
    """BertFor*: post-LN, so our attn_norm/mlp_norm are the LayerNorms *after* each residual add."""
    rules = [
        Rule("encoder.tok_emb.weight", "bert.embeddings.word_embeddings.weight"),
        Rule("encoder.pos_emb.weight", "bert.embeddings.position_embeddings.weight", "pos"),
        Rule("encoder.type_emb.weight" if cfg.type_vocab_size else None, BERT_TYPES, "type"),
        *_linear("encoder.emb_norm", "bert.embeddings.LayerNorm", True),
    ]
    for i in range(cfg.n_layers):
        ours, hf = f"encoder.blocks.{i}", f"bert.encoder.layer.{i}"
        rules += [
            *_qkv(f"{ours}.attn.qkv", f"{hf}.attention.self", True),
            *_linear(f"{ours}.attn.out", f"{hf}.attention.output.dense", True),
            *_linear(f"{ours}.attn_norm", f"{hf}.attention.output.LayerNorm", True),
            *_linear(f"{ours}.mlp.fc_in", f"{hf}.intermediate.dense", True),
            *_linear(f"{ours}.mlp.fc_out", f"{hf}.output.dense", True),
            *_linear(f"{ours}.mlp_norm", f"{hf}.output.LayerNorm", True),
        ]
    if kind == "mlm":
        return rules + [
            *_linear("heads.mlm.dense", "cls.predictions.transform.dense", True),
            *_linear("heads.mlm.norm", "cls.predictions.transform.LayerNorm", True),
            Rule("heads.mlm.bias", "cls.predictions.bias"),
            Rule("encoder.tok_emb.weight", "cls.predictions.decoder.weight", "tied"),
            Rule("heads.mlm.bias", "cls.predictions.decoder.bias", "tied"),
        ]
    # BERT's classifier = pooler (dense + tanh on [CLS]) -> dropout -> classifier
    return rules + [*_linear("heads.cls.dense", "bert.pooler.dense", True),
                    *_linear("heads.cls.classifier", "classifier", True)]


def _roberta_rules(cfg: ModelConfig, kind: str) -> list[Rule]:
    """RobertaPreLayerNormFor*: pre-LN; the norms sit inside attention / intermediate, the final norm on the model."""
    P = "roberta_prelayernorm"
    rules = [
        Rule("encoder.tok_emb.weight", f"{P}.embeddings.word_embeddings.weight"),
        Rule("encoder.pos_emb.weight", f"{P}.embeddings.position_embeddings.weight", "pos", cfg.pad_token_id + 1),
        Rule("encoder.type_emb.weight" if cfg.type_vocab_size else None, ROBERTA_TYPES, "type"),
        *_linear("encoder.emb_norm", f"{P}.embeddings.LayerNorm", True),
        *_linear("encoder.final_norm", f"{P}.LayerNorm", True),
    ]
    for i in range(cfg.n_layers):
        ours, hf = f"encoder.blocks.{i}", f"{P}.encoder.layer.{i}"
        rules += [
            *_linear(f"{ours}.attn_norm", f"{hf}.attention.LayerNorm", True),
            *_qkv(f"{ours}.attn.qkv", f"{hf}.attention.self", True),
            *_linear(f"{ours}.attn.out", f"{hf}.attention.output.dense", True),
            *_linear(f"{ours}.mlp_norm", f"{hf}.intermediate.LayerNorm", True),
            *_linear(f"{ours}.mlp.fc_in", f"{hf}.intermediate.dense", True),
            *_linear(f"{ours}.mlp.fc_out", f"{hf}.output.dense", True),
        ]
    if kind == "mlm":
        return rules + [
            *_linear("heads.mlm.dense", "lm_head.dense", True),
            *_linear("heads.mlm.norm", "lm_head.layer_norm", True),
            Rule("heads.mlm.bias", "lm_head.bias"),
            Rule("encoder.tok_emb.weight", "lm_head.decoder.weight", "tied"),
            Rule("heads.mlm.bias", "lm_head.decoder.bias", "tied"),
        ]
    return rules + [*_linear("heads.cls.dense", "classifier.dense", True),
                    *_linear("heads.cls.classifier", "classifier.out_proj", True)]


def _modernbert_rules(cfg: ModelConfig, kind: str) -> list[Rule]:
    """ModernBertFor*: embeddings.norm is our emb_norm; like ours with first_block_norm=False, HF layer 0 has no attn_norm."""
    rules = [
        Rule("encoder.tok_emb.weight", "model.embeddings.tok_embeddings.weight"),
        Rule("encoder.emb_norm.weight", "model.embeddings.norm.weight"),
        Rule("encoder.final_norm.weight", "model.final_norm.weight"),
    ]
    for i in range(cfg.n_layers):
        ours, hf = f"encoder.blocks.{i}", f"model.layers.{i}"
        if i > 0:
            rules.append(Rule(f"{ours}.attn_norm.weight", f"{hf}.attn_norm.weight"))
        rules += [
            Rule(f"{ours}.attn.qkv.weight", f"{hf}.attn.Wqkv.weight"),  # same fused [q; k; v] layout as ours
            Rule(f"{ours}.attn.out.weight", f"{hf}.attn.Wo.weight"),
            Rule(f"{ours}.mlp_norm.weight", f"{hf}.mlp_norm.weight"),
            Rule(f"{ours}.mlp.fc_in.weight", f"{hf}.mlp.Wi.weight"),  # Wi -> (input, gate), act(input) * gate: as ours
            Rule(f"{ours}.mlp.fc_out.weight", f"{hf}.mlp.Wo.weight"),
        ]
    if kind == "mlm":
        return rules + [
            Rule("heads.mlm.dense.weight", "head.dense.weight"),
            Rule("heads.mlm.norm.weight", "head.norm.weight"),
            Rule("heads.mlm.bias", "decoder.bias"),
            Rule("encoder.tok_emb.weight", "decoder.weight", "tied"),
        ]
    return rules + [
        Rule("heads.cls.dense.weight", "head.dense.weight"),
        Rule("heads.cls.norm.weight", "head.norm.weight"),
        *_linear("heads.cls.classifier", "classifier", True),
    ]


# ----------------------------------------------------------------------------------------------- transformers configs

def _bert_like_config(cfg: ModelConfig, head: HeadConfig | None, position_offset: int) -> dict:
    return dict(
        hidden_act=ACT_TO_HF[cfg.activation],
        max_position_embeddings=cfg.max_seq_len + position_offset,
        type_vocab_size=max(cfg.type_vocab_size, 1),
        layer_norm_eps=cfg.norm_eps,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        classifier_dropout=head.dropout if head else None,
    )


def _bert_like_back(hf, position_offset: int) -> tuple[dict, dict]:
    model = dict(
        activation=ACT_FROM_HF.get(hf.hidden_act, hf.hidden_act),
        max_seq_len=hf.max_position_embeddings - position_offset,
        type_vocab_size=hf.type_vocab_size,
        norm_eps=hf.layer_norm_eps,
        dropout=hf.hidden_dropout_prob,
    )
    dropout = hf.classifier_dropout if hf.classifier_dropout is not None else hf.hidden_dropout_prob
    return model, dict(pooling="cls", activation="tanh", norm=False, dropout=dropout)


def _bert_problems(hf, raw: dict, kind: str) -> list[str]:
    problems = []
    if hf.hidden_act not in ACT_FROM_HF:
        problems.append(f"hidden_act={hf.hidden_act!r} (supported: {', '.join(ACT_FROM_HF)})")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type={raw['position_embedding_type']!r} (only 'absolute')")
    if getattr(hf, "is_decoder", False):
        problems.append("is_decoder=true")
    return problems


def _roberta_problems(hf, raw: dict, kind: str) -> list[str]:
    problems = _bert_problems(hf, raw, kind)
    if hf.hidden_act != "gelu":  # RoBERTa's LM head hard-codes erf GELU; ours uses model.activation
        problems.append(f"hidden_act={hf.hidden_act!r} (only 'gelu')")
    if hf.max_position_embeddings <= hf.pad_token_id + 1:
        problems.append("max_position_embeddings leaves no room after pad_token_id + 1")
    return problems


def _modernbert_config(cfg: ModelConfig, head: HeadConfig | None) -> dict:
    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    return dict(
        hidden_activation=ACT_TO_HF[cfg.activation],
        max_position_embeddings=cfg.max_seq_len,
        layer_types=["full_attention"] * cfg.n_layers,  # budgetlm has no sliding-window layers
        rope_parameters={"full_attention": dict(rope), "sliding_attention": dict(rope)},
        norm_eps=cfg.norm_eps,
        norm_bias=False, attention_bias=False, mlp_bias=False, classifier_bias=False, decoder_bias=True,
        embedding_dropout=cfg.dropout, attention_dropout=cfg.dropout, mlp_dropout=cfg.dropout,
        # the MLM head reuses the prediction head, whose activation is classifier_activation
        classifier_activation=ACT_TO_HF[head.activation if head else cfg.activation],
        classifier_pooling=head.pooling if head else "cls",
        classifier_dropout=head.dropout if head else 0.0,
        bos_token_id=CLS, eos_token_id=SEP,
    )


def _modernbert_back(hf) -> tuple[dict, dict]:
    model = dict(
        activation=ACT_FROM_HF.get(hf.hidden_activation, hf.hidden_activation),
        max_seq_len=hf.max_position_embeddings,
        rope_theta=float(hf.rope_parameters["full_attention"]["rope_theta"]),
        norm_eps=hf.norm_eps,
        dropout=hf.embedding_dropout,
    )
    head = dict(
        pooling=hf.classifier_pooling, norm=True, dropout=hf.classifier_dropout,
        activation=ACT_FROM_HF.get(hf.classifier_activation, hf.classifier_activation),
    )
    return model, head


def _modernbert_problems(hf, raw: dict, kind: str) -> list[str]:
    problems = []
    if any(t != "full_attention" for t in hf.layer_types):
        problems.append("sliding-window (local attention) layers; budgetlm has global attention only")
    if hf.rope_parameters["full_attention"].get("rope_type", "default") != "default":
        problems.append("a RoPE scaling type other than 'default'")
    for name in ("norm_bias", "attention_bias", "mlp_bias", "classifier_bias"):
        if getattr(hf, name):
            problems.append(f"{name}=true")
    for name in ("hidden_activation", "classifier_activation"):
        if getattr(hf, name) not in ACT_FROM_HF:
            problems.append(f"{name}={getattr(hf, name)!r} (supported: {', '.join(ACT_FROM_HF)})")
    if kind == "mlm" and hf.classifier_activation != hf.hidden_activation:
        problems.append("classifier_activation != hidden_activation (budgetlm's MLM head uses model.activation)")
    return problems


# ----------------------------------------------------------------------------------------------- the registry

@dataclass(frozen=True)
class Family:
    name: str  # transformers `model_type`
    needs: dict  # ModelConfig field -> the value this family requires
    head_needs: dict  # HeadConfig field -> required value (classifiers only)
    config_class: str
    classes: dict  # kind -> transformers model class
    rules: Callable[[ModelConfig, str], list[Rule]]
    hf_config: Callable[[ModelConfig, HeadConfig | None], dict]  # family-specific transformers config kwargs
    back: Callable  # transformers config -> (ModelConfig kwargs, HeadConfig kwargs)
    problems: Callable  # (transformers config, raw config.json, kind) -> reasons it cannot be imported
    type_key: str | None = None  # HF segment embedding; None = the family has no token types
    ignore_on_import: tuple[str, ...] = ()  # HF weights that do not affect the outputs we keep


_LEARNED = dict(position="learned", glu=False, bias=True, embedding_norm=True)
_TANH_CLS_HEAD = dict(pooling="cls", activation="tanh", norm=False)

FAMILIES: dict[str, Family] = {
    "bert": Family(
        name="bert",
        needs=dict(norm_position="post", **_LEARNED),
        head_needs=_TANH_CLS_HEAD,
        config_class="BertConfig",
        classes={"mlm": "BertForMaskedLM", "classifier": "BertForSequenceClassification"},
        rules=_bert_rules,
        hf_config=lambda cfg, head: _bert_like_config(cfg, head, 0),
        back=lambda hf: _bert_like_back(hf, 0),
        problems=_bert_problems,
        type_key=BERT_TYPES,
        ignore_on_import=("bert.pooler.", "cls.seq_relationship."),  # BertForPreTraining leftovers
    ),
    "roberta-prelayernorm": Family(
        name="roberta-prelayernorm",
        needs=dict(norm_position="pre", activation="gelu", **_LEARNED),
        head_needs=_TANH_CLS_HEAD,
        config_class="RobertaPreLayerNormConfig",
        classes={"mlm": "RobertaPreLayerNormForMaskedLM",
                 "classifier": "RobertaPreLayerNormForSequenceClassification"},
        rules=_roberta_rules,
        # RoBERTa numbers real tokens from pad_token_id + 1 (create_position_ids_from_input_ids)
        hf_config=lambda cfg, head: _bert_like_config(cfg, head, cfg.pad_token_id + 1),
        back=lambda hf: _bert_like_back(hf, hf.pad_token_id + 1),
        problems=_roberta_problems,
        type_key=ROBERTA_TYPES,
        ignore_on_import=("roberta_prelayernorm.pooler.",),
    ),
    "modernbert": Family(
        name="modernbert",
        needs=dict(norm_position="pre", position="rope", glu=True, bias=False, embedding_norm=True,
                   first_block_norm=False, type_vocab_size=0),
        head_needs=dict(norm=True),
        config_class="ModernBertConfig",
        classes={"mlm": "ModernBertForMaskedLM", "classifier": "ModernBertForSequenceClassification"},
        rules=_modernbert_rules,
        hf_config=_modernbert_config,
        back=_modernbert_back,
        problems=_modernbert_problems,
    ),
}


def _unmet(section: str, obj, needs: dict) -> list[str]:
    return [f"{section}.{k}={v!r}" for k, v in needs.items() if getattr(obj, k) != v]


def select_family(cfg: ModelConfig, kind: str, head: HeadConfig | None = None) -> Family:
    """The one family whose requirements the model meets, or a UserError listing what each family needs."""
    reasons = []
    for family in FAMILIES.values():
        unmet = _unmet("model", cfg, family.needs) + (_unmet("head", head, family.head_needs) if head else [])
        if not unmet:
            return family
        reasons.append(f"{family.name} needs {', '.join(unmet)}")
    raise UserError("no transformers class matches this model: " + "; ".join(reasons))


def _head_of(meta: dict) -> HeadConfig | None:
    if meta["kind"] not in KINDS:
        raise UserError(f"cannot export a model of kind {meta['kind']!r}; exportable kinds: {', '.join(KINDS)}")
    return from_dict(HeadConfig, meta.get("head") or {}, prefix="head.") if meta["kind"] == "classifier" else None


# ----------------------------------------------------------------------------------------------- budgetlm -> HF

def _export_state(model: Model, family: Family, kind: str) -> dict[str, torch.Tensor]:
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    cfg, out, used = model.cfg, {}, set()
    for r in family.rules(cfg, kind):
        t = ours.get(r.ours)
        if r.ours is not None and t is None:
            raise RuntimeError(f"export rule refers to a missing budgetlm weight {r.ours!r}")
        used.add(r.ours)
        if r.how == "qkv":
            out.update(zip(r.hf, t.chunk(3, dim=0)))
        elif r.how == "pos":  # (T, D) -> (offset + T, D); rows below offset are never looked up for real tokens
            out[r.hf] = torch.cat([t.new_zeros(r.offset, t.shape[1]), t])
        elif r.how == "type" and t is None:  # no segment embedding: one zero row keeps HF's sum unchanged
            out[r.hf] = ours["encoder.tok_emb.weight"].new_zeros(1, cfg.d_model)
        else:
            out[r.hf] = t
    left = sorted(set(ours) - used)
    if left:  # a weight we do not export would silently change the outputs
        raise RuntimeError(f"{family.name} export leaves budgetlm weights unmapped: {left[:5]}")
    return {k: v.contiguous().clone() for k, v in out.items()}


def hf_config(model: Model, meta: dict):
    """(family, transformers config) for `model`; UserError if no family matches."""
    import transformers

    cfg, kind, head = model.cfg, meta["kind"], _head_of(meta)
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
    hf.load_state_dict(_export_state(model, family, kind), strict=True)  # every HF parameter filled
    if kind == "mlm":  # save_pretrained drops the decoder weight: it must *be* the input embedding
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
        theirs = hf(**kwargs).logits
        ours = budgetlm_logits(model, kind, ids, mask)
    finally:
        model.train(was_training)
    if kind == "mlm":
        theirs = theirs[mask.bool()]
    diff = (ours - theirs).abs().max().item()
    if not diff <= atol * max(1.0, ours.abs().max().item()):
        raise UserError(
            f"the {type(hf).__name__} built from this model does not reproduce its logits (max abs diff "
            f"{diff:.3g} on a probe batch); it would change the model's predictions, so it is not exported"
        )
    return diff


def budgetlm_logits(model: Model, kind: str, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MLM: (N, V) logits at the N positions where mask == 1; classifier: (B, num_labels)."""
    h = model.encoder(ids, None, mask)  # (B, T, D); no token types = segment 0, as HF's zeros
    if kind == "mlm":
        return model.heads["mlm"](h[mask.bool()], model.encoder.tok_emb.weight)
    return model.heads["cls"](h, mask)


def export_hf(model_dir: str | Path, out_dir: str | Path, verify: bool = True) -> Path:
    """budgetlm model dir -> transformers dir (config.json, model.safetensors, tokenizer files), atomically."""
    src, out = Path(model_dir), Path(out_dir)
    if not is_model_dir(src):
        raise UserError("not a budgetlm model directory (needs config.json + model.safetensors)", path=str(src))
    if not (src / TOKENIZER).is_file():
        raise UserError(f"no {TOKENIZER} beside the model; an export needs the tokenizer", path=str(src))
    if out.resolve() == src.resolve():
        raise UserError("the export directory must differ from the model directory", path=str(out))
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / EXPORT_NOTE).is_file())):
        raise UserError("exists and is not an earlier export; refusing to replace it", path=str(out))
    model, meta = load_model(src)
    hf = to_hf(model, meta, verify=verify)
    family = select_family(model.cfg, meta["kind"], _head_of(meta))

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    hf.save_pretrained(str(tmp))  # safetensors
    save_for_transformers(src / TOKENIZER, tmp, model.cfg.max_seq_len)
    if family.type_key is None:  # so `model(**tokenizer(...))` does not pass token_type_ids to ModernBERT
        tc = tmp / "tokenizer_config.json"
        names = {"model_input_names": ["input_ids", "attention_mask"]}
        tc.write_text(json.dumps({**json.loads(tc.read_text()), **names}, indent=2))
    note = {
        "source": str(src.resolve()),
        "source_budgetlm_version": meta.get("budgetlm_version"),
        "budgetlm_version": budgetlm.__version__,
        "family": family.name,
        "architecture": family.classes[meta["kind"]],
        "kind": meta["kind"],
    }
    (tmp / EXPORT_NOTE).write_text(json.dumps(note, indent=2))
    _replace_dir(tmp, out)
    return out


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


# ----------------------------------------------------------------------------------------------- HF -> budgetlm

def _read_hf_weights(path: Path) -> dict[str, torch.Tensor]:
    single, index = path / WEIGHTS, path / f"{WEIGHTS}.index.json"
    try:
        if single.is_file():
            return load_file(str(single))
        if index.is_file():  # sharded checkpoint
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return {k: v for shard in shards for k, v in load_file(str(path / shard)).items()}
    except Exception as e:  # safetensors raises several types for corrupt files
        raise UserError(f"cannot read weights ({e})", path=str(path)) from None
    if any((path / name).is_file() for name in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        raise UserError(
            "only pytorch_model.bin here; budgetlm reads model.safetensors only, since loading a pickle can run "
            "arbitrary code. Convert it to safetensors with a tool you trust", path=str(path),
        )
    raise UserError(f"no {WEIGHTS} here", path=str(path))


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


def from_hf(hf_dir: str | Path) -> tuple[Model, dict]:
    """transformers dir (one of FAMILIES, MaskedLM or SequenceClassification) -> (budgetlm Model, meta)."""
    p = Path(hf_dir)
    try:
        raw = json.loads((p / CONFIG).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read a transformers config ({e})", path=str(p / CONFIG)) from None
    family = FAMILIES.get(raw.get("model_type"))
    if family is None:
        raise UserError(f"model_type {raw.get('model_type')!r} is not supported; budgetlm reads: "
                        f"{', '.join(FAMILIES)}", path=str(p))
    archs = raw.get("architectures") or []
    kind = next((k for k, c in family.classes.items() if c in archs), None)
    if kind is None:
        raise UserError(f"architectures {archs} name none of: {', '.join(family.classes.values())}", path=str(p))
    hf_state = _read_hf_weights(p)  # before transformers is imported: a refusal should be quick

    import transformers

    hf = getattr(transformers, family.config_class).from_pretrained(str(p))
    problems = family.problems(hf, raw, kind)
    if problems:
        raise UserError(f"budgetlm cannot represent this {family.name} model: {'; '.join(problems)}", path=str(p))
    model_kw, head_kw = family.back(hf)
    model_kw = {**family.needs, **model_kw}  # what the family implies, then what its config says
    model_kw.update(
        vocab_size=hf.vocab_size, d_model=hf.hidden_size, n_layers=hf.num_hidden_layers, n_heads=hf.num_attention_heads,
        d_ff=hf.intermediate_size, init_std=hf.initializer_range, pad_token_id=hf.pad_token_id,
    )
    if family.type_key:
        types = hf_state.get(family.type_key)
        if model_kw["type_vocab_size"] == 1 and types is not None and not types.any():
            model_kw["type_vocab_size"] = 0  # the zero row an export writes for "no segment embedding"
    cfg = ModelConfig(**model_kw)
    cfg.validate()
    extra = {}
    if kind == "classifier":
        extra = dict(head=head_kw, labels=[hf.id2label[i] for i in range(hf.num_labels)])
        from_dict(HeadConfig, head_kw, prefix="head.").validate()
    meta = dict(kind=kind, model=dataclasses.asdict(cfg), **extra)
    model = build_from_meta(meta)
    state = _import_state(hf_state, family, cfg, kind)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UserError(f"weights do not fit the model ({' '.join(str(e).split()[:40])})", path=str(p)) from None
    model.eval()
    return model, model_meta(model, kind, **extra)


def load_any(path: str | Path) -> tuple[Model, dict, Path]:
    """A budgetlm model dir or a transformers dir -> (model, meta, tokenizer.json path)."""
    p = Path(path)
    if is_model_dir(p):
        model, meta = load_model(p)
    elif (p / CONFIG).is_file():
        model, meta = from_hf(p)
    else:
        raise UserError("neither a budgetlm model directory nor a transformers one (no config.json)", path=str(p))
    if not (p / TOKENIZER).is_file():
        raise UserError(f"no {TOKENIZER} beside the model", path=str(p))
    return model, meta, p / TOKENIZER
