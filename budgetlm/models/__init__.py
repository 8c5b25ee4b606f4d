"""Models: an encoder backbone plus named heads (`Model`), or an encoder-decoder (`EncoderDecoderModel`)."""

from __future__ import annotations

from torch import nn

from budgetlm.config import ModelConfig
from budgetlm.models.encoder import Encoder
from budgetlm.models.encoder_decoder import EncoderDecoderModel
from budgetlm.models.heads import MaskedLMHead, SequenceClassificationHead


class Model(nn.Module):
    """`encoder` returns hidden states; `heads[name]` turn them into logits."""

    def __init__(self, cfg: ModelConfig, heads: dict[str, nn.Module] | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.heads = nn.ModuleDict(heads or {})


def build_mlm_model(cfg: ModelConfig) -> Model:
    return Model(cfg, {"mlm": MaskedLMHead(cfg)})


def build_seq2seq_model(cfg: ModelConfig) -> EncoderDecoderModel:
    return EncoderDecoderModel(cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["Model", "Encoder", "EncoderDecoderModel", "MaskedLMHead", "SequenceClassificationHead", "build_mlm_model", "build_seq2seq_model", "count_parameters"]
