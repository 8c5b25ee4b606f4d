"""transformers export of the encoder-decoder, onto the family whose architecture it matches exactly:

    bart   post-LN, learned positions (offset 2), embedding LayerNorm, biases    BartForConditionalGeneration
    mbart  pre-LN, the same plus a final LayerNorm on encoder and decoder        MBartForConditionalGeneration

Both tie the token embedding to the LM head and scale attention by 1/sqrt(head size), as budgetlm does.
T5 is not a target: its relative position buckets, unscaled attention and bias-free RMSNorm have no
budgetlm option. RoPE, GLU or bias-free models are refused with the options each family needs.
The export is checked on a probe batch (logits to 1e-4) before it is written, like the encoder families.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from budgetlm.errors import UserError
from budgetlm.exporters.hf_families import ACT_TO_HF, Rule, _unmet
from budgetlm.models.config import ModelConfig
from budgetlm.models.encoder_decoder import EncoderDecoderModel
from budgetlm.generate.seq2seq import DECODER_START, EOS
from budgetlm.tokenizer import MASK, PAD

POSITION_OFFSET = 2  # BartLearnedPositionalEmbedding looks up position + 2


@dataclass(frozen=True)
class Seq2SeqFamily:
    name: str  # transformers model_type
    needs: dict  # ModelConfig field -> required value
    config_class: str
    model_class: str
    final_norms: bool  # encoder.layer_norm / decoder.layer_norm after the last block (pre-LN)


# BART's LayerNorms are nn.LayerNorm(d_model) with the default eps and a bias
_COMMON = dict(family="encoder_decoder", position="learned", glu=False, bias=True, embedding_norm=True,
               first_block_norm=True, type_vocab_size=0, norm_eps=1e-5, norm="layernorm")

FAMILIES: dict[str, Seq2SeqFamily] = {
    "bart": Seq2SeqFamily("bart", dict(norm_position="post", **_COMMON), "BartConfig", "BartForConditionalGeneration", False),
    "mbart": Seq2SeqFamily("mbart", dict(norm_position="pre", **_COMMON), "MBartConfig", "MBartForConditionalGeneration", True),
}


def select_family(cfg: ModelConfig) -> Seq2SeqFamily:
    if cfg.activation not in ACT_TO_HF:
        raise UserError(f"no transformers class matches model.activation={cfg.activation!r}")
    reasons = []
    for family in FAMILIES.values():
        unmet = _unmet("model", cfg, family.needs)
        if not unmet:
            return family
        reasons.append(f"{family.name} needs {', '.join(unmet)}")
    raise UserError("no transformers encoder-decoder class matches this model: " + "; ".join(reasons))


def _linear(ours: str, hf: str) -> list[Rule]:
    return [Rule(f"{ours}.weight", f"{hf}.weight"), Rule(f"{ours}.bias", f"{hf}.bias")]


def _split(ours: str, hf: str, names: tuple[str, ...]) -> list[Rule]:
    """Our fused projection (rows stacked in `names` order) <-> separate HF projections."""
    return [Rule(f"{ours}.{p}", tuple(f"{hf}.{n}.{p}" for n in names), "split") for p in ("weight", "bias")]


def rules(cfg: ModelConfig, family: Seq2SeqFamily) -> list[Rule]:
    rules = [
        Rule("encoder.tok_emb.weight", "model.shared.weight"),
        *(Rule("encoder.tok_emb.weight", f"{k}.weight", "tied")
          for k in ("model.encoder.embed_tokens", "model.decoder.embed_tokens", "lm_head")),
        Rule(None, "final_logits_bias", "zeros"),
    ]
    for side in ("encoder", "decoder"):
        rules += [
            Rule(f"{side}.pos_emb.weight", f"model.{side}.embed_positions.weight", "pos", POSITION_OFFSET),
            *_linear(f"{side}.emb_norm", f"model.{side}.layernorm_embedding"),
        ]
        if family.final_norms:
            rules += _linear(f"{side}.final_norm", f"model.{side}.layer_norm")
    for i in range(cfg.n_layers):
        ours, hf = f"encoder.blocks.{i}", f"model.encoder.layers.{i}"
        rules += [
            *_split(f"{ours}.attn.qkv", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj")),
            *_linear(f"{ours}.attn.out", f"{hf}.self_attn.out_proj"),
            *_linear(f"{ours}.attn_norm", f"{hf}.self_attn_layer_norm"),
            *_linear(f"{ours}.mlp.fc_in", f"{hf}.fc1"),
            *_linear(f"{ours}.mlp.fc_out", f"{hf}.fc2"),
            *_linear(f"{ours}.mlp_norm", f"{hf}.final_layer_norm"),
        ]
    for i in range(cfg.n_decoder_layers or cfg.n_layers):
        ours, hf = f"decoder.blocks.{i}", f"model.decoder.layers.{i}"
        rules += [
            *_split(f"{ours}.attn.qkv", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj")),
            *_linear(f"{ours}.attn.out", f"{hf}.self_attn.out_proj"),
            *_linear(f"{ours}.attn_norm", f"{hf}.self_attn_layer_norm"),
            *_linear(f"{ours}.cross.q", f"{hf}.encoder_attn.q_proj"),
            *_split(f"{ours}.cross.kv", f"{hf}.encoder_attn", ("k_proj", "v_proj")),
            *_linear(f"{ours}.cross.out", f"{hf}.encoder_attn.out_proj"),
            *_linear(f"{ours}.cross_norm", f"{hf}.encoder_attn_layer_norm"),
            *_linear(f"{ours}.mlp.fc_in", f"{hf}.fc1"),
            *_linear(f"{ours}.mlp.fc_out", f"{hf}.fc2"),
            *_linear(f"{ours}.mlp_norm", f"{hf}.final_layer_norm"),
        ]
    return rules


def export_state(model: EncoderDecoderModel, family: Seq2SeqFamily) -> dict[str, torch.Tensor]:
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    out, used = {}, set()
    for r in rules(model.cfg, family):
        t = ours.get(r.ours)
        if r.ours is not None and t is None:
            raise RuntimeError(f"export rule refers to a missing budgetlm weight {r.ours!r}")
        used.add(r.ours)
        if r.how == "split":
            out.update(zip(r.hf, t.chunk(len(r.hf), dim=0)))
        elif r.how == "pos":  # rows below the offset are never looked up
            out[r.hf] = torch.cat([t.new_zeros(r.offset, t.shape[1]), t])
        elif r.how == "zeros":  # BART's final_logits_bias; our LM head has no bias
            out[r.hf] = torch.zeros(1, model.cfg.vocab_size)
        else:
            out[r.hf] = t
    left = sorted(set(ours) - used - {None})
    if left:  # a weight we do not export would silently change the outputs
        raise RuntimeError(f"{family.name} export leaves budgetlm weights unmapped: {left[:5]}")
    return {k: v.contiguous().clone() for k, v in out.items()}


def hf_config(cfg: ModelConfig, family: Seq2SeqFamily):
    import transformers

    n_dec = cfg.n_decoder_layers or cfg.n_layers
    return getattr(transformers, family.config_class)(
        vocab_size=cfg.vocab_size, d_model=cfg.d_model, max_position_embeddings=cfg.max_seq_len,
        encoder_layers=cfg.n_layers, decoder_layers=n_dec, encoder_attention_heads=cfg.n_heads,
        decoder_attention_heads=cfg.n_heads, encoder_ffn_dim=cfg.d_ff, decoder_ffn_dim=cfg.d_ff,
        activation_function=ACT_TO_HF[cfg.activation], dropout=cfg.dropout, attention_dropout=cfg.attention_dropout_p,
        activation_dropout=0.0, init_std=cfg.init_std, scale_embedding=False, tie_word_embeddings=True,
        pad_token_id=PAD, bos_token_id=DECODER_START, eos_token_id=EOS, decoder_start_token_id=DECODER_START,
        forced_eos_token_id=None,
    )


def to_hf(model: EncoderDecoderModel, verify: bool = True):
    """The matching transformers *ForConditionalGeneration with `model`'s weights, in eval mode."""
    import transformers

    family = select_family(model.cfg)
    hf = getattr(transformers, family.model_class)(hf_config(model.cfg, family))
    hf.load_state_dict(export_state(model, family), strict=True)  # every HF parameter and buffer filled
    assert hf.get_output_embeddings().weight is hf.get_input_embeddings().weight, "LM head is not tied"
    hf.eval()
    if verify:
        verify_parity(model, hf)
    return hf


def probe_batch(cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(source ids, source mask, decoder ids): two rows, the second with right padding in the source."""
    g = torch.Generator().manual_seed(0)
    S, T = min(cfg.max_seq_len, 9), min(cfg.max_seq_len, 6)
    low = MASK + 1 if cfg.vocab_size > MASK + 1 else 0
    ids = torch.randint(low, cfg.vocab_size, (2, S), generator=g)
    mask = torch.ones(2, S, dtype=torch.long)
    if S > 3:
        ids[1, S - 3:], mask[1, S - 3:] = PAD, 0
    dec = torch.randint(low, cfg.vocab_size, (2, T), generator=g)
    dec[:, 0] = DECODER_START
    return ids, mask, dec


@torch.no_grad()
def verify_parity(model: EncoderDecoderModel, hf, atol: float = 1e-4) -> float:
    """Max abs logit difference on the probe batch (non-padded rows compared in full); UserError past atol."""
    ids, mask, dec = probe_batch(model.cfg)
    was_training = model.training
    model.eval()
    try:
        ours = model(ids, mask, dec)  # (2, T, V)
        theirs = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    finally:
        model.train(was_training)
    diff = (ours - theirs).abs().max().item()
    if not diff <= atol * max(1.0, ours.abs().max().item()):
        raise UserError(
            f"the {type(hf).__name__} built from this model does not reproduce its logits (max abs diff "
            f"{diff:.3g} on a probe batch); it would change the model's outputs, so it is not exported"
        )
    return diff
