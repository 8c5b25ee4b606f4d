"""Models: a backbone (encoder or decoder, by `model.family`) plus named heads (`Model`), or an encoder-decoder
(`EncoderDecoderModel`). Objectives/tasks call them."""

from __future__ import annotations

from torch import nn

from budgetlm.models.config import ModelConfig
from budgetlm.models.decoder import Decoder
from budgetlm.models.encoder import Encoder
from budgetlm.models.encoder_decoder import EncoderDecoderModel
from budgetlm.models.heads import HEAD_KINDS, CausalLMHead, EmbeddingHead, MaskedLMHead, ReplacedTokenHead, SequenceClassificationHead, TokenClassificationHead

BACKBONES = {"encoder": Encoder, "decoder": Decoder}  # encoder_decoder: EncoderDecoderModel owns both stacks


class Model(nn.Module):
    """`encoder` or `decoder` (named by the family, so checkpoints say what they hold) returns hidden
    states; `heads[name]` turn them into logits."""

    def __init__(self, cfg: ModelConfig, heads: dict[str, nn.Module] | None = None):
        super().__init__()
        self.cfg = cfg
        self.add_module(cfg.family, BACKBONES[cfg.family](cfg))
        self.heads = nn.ModuleDict(heads or {})

    @property
    def backbone(self) -> nn.Module:
        return getattr(self, self.cfg.family)


def build_mlm_model(cfg: ModelConfig) -> Model:
    return Model(cfg, {"mlm": MaskedLMHead(cfg)})


def build_lm_model(cfg: ModelConfig) -> Model:
    """A decoder with its causal-LM head."""
    return Model(cfg, {"lm": CausalLMHead(cfg)})


def build_seq2seq_model(cfg: ModelConfig) -> EncoderDecoderModel:
    return EncoderDecoderModel(cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["Model", "Encoder", "Decoder", "EncoderDecoderModel", "EmbeddingHead", "MaskedLMHead", "ReplacedTokenHead", "CausalLMHead",
           "SequenceClassificationHead", "TokenClassificationHead", "HEAD_KINDS", "build_mlm_model", "build_lm_model",
           "build_seq2seq_model", "count_parameters", "BACKBONES"]
