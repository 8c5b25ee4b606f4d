"""Models: a backbone (encoder or decoder, by `model.family`) plus named heads (`Model`), or an encoder-decoder
(`EncoderDecoderModel`); `KINDS` (kinds.py) says which one each checkpoint kind is. Objectives/tasks call them."""

from __future__ import annotations

from torch import nn

from budgetlm.models.config import ModelConfig
from budgetlm.models.decoder import Decoder
from budgetlm.models.encoder import Encoder
from budgetlm.models.encoder_decoder import EncoderDecoderModel
from budgetlm.models.heads import HEAD_KINDS, CausalLMHead, EmbeddingHead, MaskedLMHead, ReplacedTokenHead, SequenceClassificationHead, TokenClassificationHead
from budgetlm.models.kinds import KINDS, build_kind, build_rtd_model
from budgetlm.models.model import BACKBONES, Model


def build_mlm_model(cfg: ModelConfig) -> Model:
    return build_kind("mlm", cfg)


def build_lm_model(cfg: ModelConfig) -> Model:
    """A decoder with its causal-LM head."""
    return build_kind("clm", cfg)


def build_seq2seq_model(cfg: ModelConfig) -> EncoderDecoderModel:
    return build_kind("seq2seq", cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["Model", "Encoder", "Decoder", "EncoderDecoderModel", "EmbeddingHead", "MaskedLMHead", "ReplacedTokenHead", "CausalLMHead",
           "SequenceClassificationHead", "TokenClassificationHead", "HEAD_KINDS", "KINDS", "build_kind", "build_mlm_model",
           "build_lm_model", "build_seq2seq_model", "build_rtd_model", "count_parameters", "BACKBONES"]
