"""Hugging Face `transformers` export: budgetlm models -> stock transformers classes (hf_import.py reads them back,
writers.py picks the writer for a model kind and writes the directory atomically).

No custom code on either side: an export loads offline with `AutoModelForMaskedLM` /
`AutoModelForSequenceClassification` / `AutoModelForCausalLM` / `AutoModelForSeq2SeqLM` and `AutoTokenizer`.
Encoder-decoders export to BART / mBART (exporters/hf_seq2seq.py; export only). Each architecture maps onto one *family*:

    bert                  post-LN, learned positions, plain MLP, biases    BertFor{MaskedLM,SequenceClassification}
    roberta-prelayernorm  pre-LN, learned positions, plain MLP, biases     RobertaPreLayerNormFor...
    modernbert            pre-LN, RoPE, GLU MLP, no biases, no segments    ModernBertFor...
    gpt2                  decoder: learned positions, LayerNorm, biases    GPT2LMHeadModel
    llama                 decoder: RoPE, RMSNorm, SwiGLU, no biases        LlamaForCausalLM

`FAMILIES` (exporters/hf_families.py) is the registry: per family, the ModelConfig/HeadConfig values it needs, the transformers config it
builds (and reads back), and a list of weight `Rule`s. The same rules drive both directions, so export and
import cannot drift apart. `to_hf` checks its result on a probe batch, because a wrong mapping gives a model
that loads fine and predicts garbage.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from budgetlm.errors import UserError
from budgetlm.exporters.hf_families import Family, head_of, select_family
from budgetlm.models import Model
from budgetlm.tokenizer import CLS, MASK, SEP, save_for_transformers


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


def save_hf_dir(hf, tok_file: Path, out: Path, max_len: int, decoder: bool = False, token_types: bool = True) -> None:
    """A transformers model and budgetlm's tokenizer -> `out` (safetensors weights, tokenizer files)."""
    hf.save_pretrained(str(out))  # safetensors
    save_for_transformers(tok_file, out, max_len, decoder=decoder)
    if not token_types:  # so `model(**tokenizer(...))` does not pass token_type_ids to ModernBERT, BART or GPT-2
        tc = out / "tokenizer_config.json"
        names = {"model_input_names": ["input_ids", "attention_mask"]}
        tc.write_text(json.dumps({**json.loads(tc.read_text()), **names}, indent=2))
