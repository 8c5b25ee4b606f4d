"""The transformers families budgetlm maps onto: which options each needs, its transformers config, and the
weight `Rule`s that translate state dicts in both directions (used by exporters/hf.py and exporters/hf_import.py).

    bert                  post-LN, learned positions, plain MLP, biases          BertFor{MaskedLM,SequenceClassification}
    roberta-prelayernorm  pre-LN, learned positions, plain MLP, biases           RobertaPreLayerNormFor...
    modernbert            pre-LN, RoPE, GLU MLP, no biases, no segment embedding ModernBertFor...
    gpt2                  decoder: pre-LN, learned positions, LayerNorm, plain MLP, biases   GPT2LMHeadModel
    llama                 decoder: pre-RMSNorm, RoPE, SwiGLU, no biases                      LlamaForCausalLM
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from budgetlm.config import from_dict
from budgetlm.errors import UserError
from budgetlm.models.config import HeadConfig, ModelConfig
from budgetlm.models.kinds import KINDS as MODEL_KINDS
from budgetlm.models.choices import ACTIVATIONS
from budgetlm.tokenizer import CLS, SEP

EXPORT_NOTE = "budgetlm_export.json"
# the model kinds that map onto a transformers class of a family here; "embedder" goes to sentence-transformers
# (exporters/sentence_transformers.py), "seq2seq" to BART (exporters/hf_seq2seq.py)
KINDS = tuple(name for name, kind in MODEL_KINDS.items() if kind.export == "transformers")

# our activation name <-> transformers ACT2FN name, from the one activation table (models/choices.py)
ACT_TO_HF = {name: act.hf_name for name, act in ACTIVATIONS.items()}
ACT_FROM_HF = {v: k for k, v in ACT_TO_HF.items()} | {"gelu_new": "gelu_tanh"}  # GPT-2's name for tanh GELU


# ----------------------------------------------------------------------------------------------- weight rules

@dataclass(frozen=True)
class Rule:
    """One weight: our state-dict key <-> transformers key(s), converted by `how`.

    copy  same tensor
    qkv   our fused qkv (rows [q; k; v], heads contiguous in each) <-> three separate projections; the same
          row split maps our GLU fc_in (rows [value; gate]) <-> Llama's (gate_proj, up_proj)
    pos   our position rows 0..T-1 <-> HF rows offset..offset+T-1 (RoBERTa counts positions from pad_token_id+1)
    type  our segment embedding <-> HF token_type_embeddings; none on our side = one all-zero HF row
    tied  an HF alias of one of our tensors (the tied decoder); exported, and on import checked to be equal
    T     transposed: GPT-2's Conv1D stores (in, out), our nn.Linear (out, in)
    """

    ours: str | None
    hf: str | tuple[str, ...]
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
    if kind == "encoder":
        return rules
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
    if kind == "encoder":
        return rules
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
    if kind == "encoder":
        return rules
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


def _lm_head_rule(cfg: ModelConfig) -> Rule:
    if cfg.tie_embeddings:
        return Rule("decoder.tok_emb.weight", "lm_head.weight", "tied")
    return Rule("heads.lm.proj.weight", "lm_head.weight")


def _gpt2_rules(cfg: ModelConfig, kind: str) -> list[Rule]:
    """GPT2LMHeadModel: ln_1 / ln_2 are our pre-LN attn_norm / mlp_norm; its Conv1D weights are transposed."""
    rules = [
        Rule("decoder.tok_emb.weight", "transformer.wte.weight"),
        Rule("decoder.pos_emb.weight", "transformer.wpe.weight"),
        *_linear("decoder.final_norm", "transformer.ln_f", True),
    ]
    for i in range(cfg.n_layers):
        ours, hf = f"decoder.blocks.{i}", f"transformer.h.{i}"
        rules += [
            *_linear(f"{ours}.attn_norm", f"{hf}.ln_1", True),
            Rule(f"{ours}.attn.qkv.weight", f"{hf}.attn.c_attn.weight", "T"),  # same [q; k; v] order
            Rule(f"{ours}.attn.qkv.bias", f"{hf}.attn.c_attn.bias"),
            Rule(f"{ours}.attn.out.weight", f"{hf}.attn.c_proj.weight", "T"),
            Rule(f"{ours}.attn.out.bias", f"{hf}.attn.c_proj.bias"),
            *_linear(f"{ours}.mlp_norm", f"{hf}.ln_2", True),
            Rule(f"{ours}.mlp.fc_in.weight", f"{hf}.mlp.c_fc.weight", "T"),
            Rule(f"{ours}.mlp.fc_in.bias", f"{hf}.mlp.c_fc.bias"),
            Rule(f"{ours}.mlp.fc_out.weight", f"{hf}.mlp.c_proj.weight", "T"),
            Rule(f"{ours}.mlp.fc_out.bias", f"{hf}.mlp.c_proj.bias"),
        ]
    return rules + [_lm_head_rule(cfg)]


def _llama_rules(cfg: ModelConfig, kind: str) -> list[Rule]:
    """LlamaForCausalLM: RMSNorms input_layernorm / post_attention_layernorm; act(gate_proj x) * up_proj x is
    our act(value) * gate; RoPE in the same rotate_half layout as ours, so q/k need no permutation."""
    rules = [
        Rule("decoder.tok_emb.weight", "model.embed_tokens.weight"),
        Rule("decoder.final_norm.weight", "model.norm.weight"),
    ]
    for i in range(cfg.n_layers):
        ours, hf = f"decoder.blocks.{i}", f"model.layers.{i}"
        rules += [
            Rule(f"{ours}.attn_norm.weight", f"{hf}.input_layernorm.weight"),
            Rule(f"{ours}.attn.qkv.weight", tuple(f"{hf}.self_attn.{n}_proj.weight" for n in "qkv"), "qkv"),
            Rule(f"{ours}.attn.out.weight", f"{hf}.self_attn.o_proj.weight"),
            Rule(f"{ours}.mlp_norm.weight", f"{hf}.post_attention_layernorm.weight"),
            Rule(f"{ours}.mlp.fc_in.weight", (f"{hf}.mlp.gate_proj.weight", f"{hf}.mlp.up_proj.weight"), "qkv"),
            Rule(f"{ours}.mlp.fc_out.weight", f"{hf}.mlp.down_proj.weight"),
        ]
    return rules + [_lm_head_rule(cfg)]


# ----------------------------------------------------------------------------------------------- transformers configs

def _attention_dropout(attention: float, hidden: float) -> float:
    """model.attention_dropout for a transformers config: -1 (follow model.dropout) when the two agree."""
    return -1.0 if attention == hidden else float(attention)


def _bert_like_config(cfg: ModelConfig, head: HeadConfig | None, position_offset: int) -> dict:
    return dict(
        hidden_act=ACT_TO_HF[cfg.activation],
        max_position_embeddings=cfg.max_seq_len + position_offset,
        type_vocab_size=max(cfg.type_vocab_size, 1),
        layer_norm_eps=cfg.norm_eps,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.attention_dropout_p,
        classifier_dropout=head.dropout if head else None,
    )


def _bert_like_back(hf, position_offset: int) -> tuple[dict, dict]:
    model = dict(
        activation=ACT_FROM_HF.get(hf.hidden_act, hf.hidden_act),
        max_seq_len=hf.max_position_embeddings - position_offset,
        type_vocab_size=hf.type_vocab_size,
        norm_eps=hf.layer_norm_eps,
        dropout=hf.hidden_dropout_prob,
        attention_dropout=_attention_dropout(hf.attention_probs_dropout_prob, hf.hidden_dropout_prob),
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
        embedding_dropout=cfg.dropout, attention_dropout=cfg.attention_dropout_p, mlp_dropout=cfg.dropout,
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
        attention_dropout=_attention_dropout(hf.attention_dropout, hf.embedding_dropout),
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


def _gpt2_config(cfg: ModelConfig, head: HeadConfig | None) -> dict:
    return dict(
        n_embd=cfg.d_model, n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=cfg.d_ff, n_positions=cfg.max_seq_len,
        activation_function=ACT_TO_HF[cfg.activation], layer_norm_epsilon=cfg.norm_eps,
        resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.attention_dropout_p,
        scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False,
        tie_word_embeddings=cfg.tie_embeddings, bos_token_id=SEP, eos_token_id=SEP,
    )


def _gpt2_back(hf) -> tuple[dict, dict]:
    model = dict(
        activation=ACT_FROM_HF.get(hf.activation_function, hf.activation_function), max_seq_len=hf.n_positions,
        d_ff=hf.n_inner or 4 * hf.n_embd, norm_eps=hf.layer_norm_epsilon, dropout=hf.resid_pdrop,
        attention_dropout=_attention_dropout(hf.attn_pdrop, hf.resid_pdrop),
        tie_embeddings=hf.tie_word_embeddings,
    )
    return model, {}


def _gpt2_problems(hf, raw: dict, kind: str) -> list[str]:
    problems = []
    if hf.activation_function not in ACT_FROM_HF:
        problems.append(f"activation_function={hf.activation_function!r} (supported: {', '.join(ACT_FROM_HF)})")
    if not hf.scale_attn_weights or hf.scale_attn_by_inverse_layer_idx:
        problems.append("attention scaled other than by 1/sqrt(head size)")
    if getattr(hf, "add_cross_attention", False):
        problems.append("add_cross_attention=true")
    return problems


def _llama_config(cfg: ModelConfig, head: HeadConfig | None) -> dict:
    return dict(
        hidden_act=ACT_TO_HF[cfg.activation], max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.norm_eps,
        num_key_value_heads=cfg.n_heads, head_dim=cfg.d_model // cfg.n_heads,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        attention_bias=False, mlp_bias=False, attention_dropout=cfg.attention_dropout_p,
        tie_word_embeddings=cfg.tie_embeddings, bos_token_id=SEP, eos_token_id=SEP,
    )


def _llama_back(hf) -> tuple[dict, dict]:
    model = dict(
        activation=ACT_FROM_HF.get(hf.hidden_act, hf.hidden_act), max_seq_len=hf.max_position_embeddings,
        rope_theta=float(hf.rope_parameters["rope_theta"]), norm_eps=hf.rms_norm_eps, dropout=hf.attention_dropout,
        tie_embeddings=hf.tie_word_embeddings,
    )
    return model, {}


def _llama_problems(hf, raw: dict, kind: str) -> list[str]:
    problems = []
    if hf.num_key_value_heads != hf.num_attention_heads:
        problems.append("grouped-query attention (num_key_value_heads != num_attention_heads)")
    if hf.head_dim * hf.num_attention_heads != hf.hidden_size:
        problems.append("head_dim * num_attention_heads != hidden_size")
    if hf.rope_parameters.get("rope_type", "default") != "default":
        problems.append("a RoPE scaling type other than 'default'")
    if hf.attention_bias or hf.mlp_bias:
        problems.append("attention_bias / mlp_bias = true")
    if hf.hidden_act not in ACT_FROM_HF:
        problems.append(f"hidden_act={hf.hidden_act!r} (supported: {', '.join(ACT_FROM_HF)})")
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
    base_prefix: str = ""  # the backbone's key prefix in *ForMaskedLM checkpoints, absent in a bare backbone's


_LEARNED = dict(position="learned", glu=False, bias=True, embedding_norm=True)
_ENCODER = dict(family="encoder", norm="layernorm")
_DECODER = dict(family="decoder", norm_position="pre", embedding_norm=False, first_block_norm=True, type_vocab_size=0)
_TANH_CLS_HEAD = dict(pooling="cls", activation="tanh", norm=False)

FAMILIES: dict[str, Family] = {
    "bert": Family(
        name="bert",
        needs=dict(norm_position="post", **_ENCODER, **_LEARNED),
        head_needs=_TANH_CLS_HEAD,
        config_class="BertConfig",
        # "encoder" (import only): a bare BertModel such as all-MiniLM-L6-v2, loaded without heads
        classes={"mlm": "BertForMaskedLM", "classifier": "BertForSequenceClassification", "encoder": "BertModel"},
        rules=_bert_rules,
        hf_config=lambda cfg, head: _bert_like_config(cfg, head, 0),
        back=lambda hf: _bert_like_back(hf, 0),
        problems=_bert_problems,
        type_key=BERT_TYPES,
        # BertForPreTraining leftovers; the position_ids buffer older checkpoints saved
        ignore_on_import=("bert.pooler.", "cls.seq_relationship.", "bert.embeddings.position_ids"),
        base_prefix="bert.",
    ),
    "roberta-prelayernorm": Family(
        name="roberta-prelayernorm",
        needs=dict(norm_position="pre", activation="gelu", **_ENCODER, **_LEARNED),
        head_needs=_TANH_CLS_HEAD,
        config_class="RobertaPreLayerNormConfig",
        classes={"mlm": "RobertaPreLayerNormForMaskedLM",
                 "classifier": "RobertaPreLayerNormForSequenceClassification", "encoder": "RobertaPreLayerNormModel"},
        rules=_roberta_rules,
        # RoBERTa numbers real tokens from pad_token_id + 1 (create_position_ids_from_input_ids)
        hf_config=lambda cfg, head: _bert_like_config(cfg, head, cfg.pad_token_id + 1),
        back=lambda hf: _bert_like_back(hf, hf.pad_token_id + 1),
        problems=_roberta_problems,
        type_key=ROBERTA_TYPES,
        ignore_on_import=("roberta_prelayernorm.pooler.",),
        base_prefix="roberta_prelayernorm.",
    ),
    "modernbert": Family(
        name="modernbert",
        needs=dict(norm_position="pre", position="rope", glu=True, bias=False, embedding_norm=True,
                   first_block_norm=False, type_vocab_size=0, **_ENCODER),
        head_needs=dict(norm=True),
        config_class="ModernBertConfig",
        classes={"mlm": "ModernBertForMaskedLM", "classifier": "ModernBertForSequenceClassification",
                 "encoder": "ModernBertModel"},
        rules=_modernbert_rules,
        hf_config=_modernbert_config,
        back=_modernbert_back,
        problems=_modernbert_problems,
        base_prefix="model.",
    ),
    "gpt2": Family(
        name="gpt2",
        needs=dict(position="learned", norm="layernorm", glu=False, bias=True, **_DECODER),
        head_needs={},
        config_class="GPT2Config",
        classes={"clm": "GPT2LMHeadModel"},
        rules=_gpt2_rules,
        hf_config=_gpt2_config,
        back=_gpt2_back,
        problems=_gpt2_problems,
    ),
    "llama": Family(
        name="llama",
        needs=dict(position="rope", norm="rmsnorm", glu=True, bias=False, **_DECODER),
        head_needs={},
        config_class="LlamaConfig",
        classes={"clm": "LlamaForCausalLM"},
        rules=_llama_rules,
        hf_config=_llama_config,
        back=_llama_back,
        problems=_llama_problems,
    ),
}


def _unmet(section: str, obj, needs: dict) -> list[str]:
    return [f"{section}.{k}={v!r}" for k, v in needs.items() if getattr(obj, k) != v]


def select_family(cfg: ModelConfig, kind: str, head: HeadConfig | None = None) -> Family:
    """The one family whose requirements the model meets, or a UserError listing what each family needs."""
    reasons = []
    for family in FAMILIES.values():
        if kind not in family.classes:
            continue
        unmet = _unmet("model", cfg, family.needs) + (_unmet("head", head, family.head_needs) if head else [])
        if not unmet:
            return family
        reasons.append(f"{family.name} needs {', '.join(unmet)}")
    raise UserError("no transformers class matches this model: " + "; ".join(reasons))


def head_of(meta: dict) -> HeadConfig | None:
    if meta["kind"] not in KINDS:
        raise UserError(f"cannot export a model of kind {meta['kind']!r}; exportable kinds: {', '.join(KINDS)}")
    return from_dict(HeadConfig, meta.get("head") or {}, prefix="head.") if meta["kind"] == "classifier" else None
