"""The model kinds, as transformers' auto-class maps: the `kind` a checkpoint's config.json names -> the backbone
family it holds, how its heads are built, and the format it exports to. Building (`build_mlm_model`, ...),
loading (`io.build_from_meta`), fine-tuning and export all read `KINDS`; a new kind is one entry here.

Also the ELECTRA training model (`build_rtd_model`), which is never saved as such: the run keeps its encoder
(kind 'encoder').
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from torch import nn

from budgetlm.config import from_dict
from budgetlm.models.config import HeadConfig, ModelConfig
from budgetlm.errors import UserError
from budgetlm.models.encoder_decoder import EncoderDecoderModel
from budgetlm.models.heads import (
    HEAD_KINDS, CausalLMHead, EmbeddingHead, MaskedLMHead, ReplacedTokenHead, SequenceClassificationHead,
)
from budgetlm.models.model import Model

CONFIG = "config.json"  # named in messages; models/io.py writes it


@dataclass(frozen=True)
class Kind:
    family: str  # the backbone: "encoder", "decoder", "encoder_decoder", or "any" (model.family says)
    build: Callable[[ModelConfig, dict], nn.Module]  # (resolved ModelConfig, config.json's mapping) -> the model
    export: str | None  # exporters/writers.py's EXPORTERS key: "transformers", "sentence-transformers", "bart"
    doc: str


def _unknown(meta: dict) -> UserError:
    return UserError(f"unknown model kind {meta['kind']!r} in {CONFIG}")


def listed_heads(cfg: ModelConfig, meta: dict) -> dict[str, nn.Module]:
    """Fine-tuned models' heads from config.json's {head name: {head_kind, task_type, labels, head}}."""
    heads = {}
    for name, h in meta["heads"].items():
        if h.get("head_kind") not in HEAD_KINDS:
            raise UserError(f"unknown head kind {h.get('head_kind')!r} for head {name!r} in {CONFIG}")
        head = from_dict(HeadConfig, h.get("head") or {}, prefix="head.")
        heads[name] = HEAD_KINDS[h["head_kind"]](cfg, head, len(h["labels"]))
    return heads


def _finetuned(cfg: ModelConfig, meta: dict) -> Model:
    if meta.get("heads"):
        return Model(cfg, listed_heads(cfg, meta))
    if meta["kind"] == "classifier":  # written before fine-tuned models listed their heads
        head = from_dict(HeadConfig, meta.get("head", {}), prefix="head.")
        return Model(cfg, {"cls": SequenceClassificationHead(cfg, head, len(meta["labels"]))})
    raise _unknown(meta)  # a tagger / multitask model always lists its heads


def _embedder(cfg: ModelConfig, meta: dict) -> Model:
    emb = meta.get("embedding") or {}
    try:
        head = EmbeddingHead(cfg, emb.get("pooling", "mean"), int(emb.get("dim", 0)), int(emb.get("top_pcs", 0)),
                             emb.get("activation", "identity"))
    except ValueError as e:
        raise UserError(f"{CONFIG}: embedding head: {e}") from None
    return Model(cfg, {"embed": head})


KINDS: dict[str, Kind] = {  # the order exporters/hf_families.py lists the transformers kinds in
    "mlm": Kind("encoder", lambda cfg, meta: Model(cfg, {"mlm": MaskedLMHead(cfg)}), "transformers",
                "an encoder with its masked-LM head (pre-training)"),
    "classifier": Kind("any", _finetuned, "transformers", "fine-tuned sequence classification head(s)"),
    "clm": Kind("decoder", lambda cfg, meta: Model(cfg, {"lm": CausalLMHead(cfg)}), "transformers",
                "a decoder with its causal-LM head (pre-training)"),
    "encoder": Kind("encoder", lambda cfg, meta: Model(cfg), "transformers",
                    "a bare backbone (ELECTRA's discriminator, an imported BertModel)"),
    "embedder": Kind("encoder", _embedder, "sentence-transformers", "an encoder with a sentence-embedding head"),
    "seq2seq": Kind("encoder_decoder", lambda cfg, meta: EncoderDecoderModel(cfg), "bart",
                    "an encoder-decoder with its tied LM head (text-to-text)"),
    "tagger": Kind("any", _finetuned, None, "fine-tuned token classification head(s)"),
    "multitask": Kind("any", _finetuned, None, "several fine-tuned heads"),
}


def build_kind(kind: str, cfg: ModelConfig, meta: dict | None = None) -> nn.Module:
    """A fresh model of `kind` (config.json's value); an unknown kind is a UserError."""
    meta = {"kind": kind, **(meta or {})}
    if kind not in KINDS:
        raise _unknown(meta)
    return KINDS[kind].build(cfg, meta)


def tie_embedding(generator_model: Model, model: Model) -> None:
    """Make the generator read (and train) the discriminator's token embedding, as ELECTRA does.

    The embedding stays registered in the discriminator only, so the state dict -- and every checkpoint --
    holds it once; the generator keeps a plain reference to it (and its MLM head is tied to that)."""
    del generator_model.encoder.tok_emb
    object.__setattr__(generator_model.encoder, "tok_emb", model.encoder.tok_emb)
    generator_model.tie_weights()


def build_rtd_model(cfg: ModelConfig, generator_layers: int, generator_d_ff: int = 0) -> Model:
    """ELECTRA (Clark et al. 2020): the discriminator (the encoder being trained, with its `rtd` head) and, as
    `model.generator`, a masked-LM encoder of `generator_layers` layers (feed-forward `generator_d_ff`,
    0 = cfg.d_ff) reading its token embedding."""
    model = Model(cfg, {"rtd": ReplacedTokenHead(cfg)})
    gen_cfg = dataclasses.replace(cfg, n_layers=generator_layers, d_ff=generator_d_ff or cfg.d_ff)
    model.generator = build_kind("mlm", gen_cfg)
    tie_embedding(model.generator, model)
    return model
