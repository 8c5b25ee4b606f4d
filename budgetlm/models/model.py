"""`Model`: one backbone (encoder or decoder, by `model.family`) plus named heads, with the vocabulary heads tied to
the backbone's token embedding when the model is built."""

from __future__ import annotations

from torch import nn

from budgetlm.models.config import ModelConfig
from budgetlm.models.decoder import Decoder
from budgetlm.models.encoder import Encoder
from budgetlm.models.heads import TiedProjection

BACKBONES = {"encoder": Encoder, "decoder": Decoder}  # encoder_decoder: EncoderDecoderModel owns both stacks


def tie_heads(heads: nn.ModuleDict, embedding: nn.Embedding) -> None:
    """Point every head that projects onto the vocabulary at `embedding` (registered once, in the backbone)."""
    for head in heads.values():
        if isinstance(head, TiedProjection):
            head.tie(embedding)


def output_embeddings(heads: nn.ModuleDict) -> nn.Module | None:
    """The module whose (V, D) `weight` the vocabulary head projects onto, or None without such a head."""
    for head in heads.values():
        if isinstance(head, TiedProjection):
            return head.output_embeddings()
    return None


class Model(nn.Module):
    """`encoder` or `decoder` (named by the family, so checkpoints say what they hold) returns hidden
    states; `heads[name]` turn them into logits (`model.heads["mlm"](hidden)`)."""

    def __init__(self, cfg: ModelConfig, heads: dict[str, nn.Module] | None = None):
        super().__init__()
        self.cfg = cfg
        self.add_module(cfg.family, BACKBONES[cfg.family](cfg))
        self.heads = nn.ModuleDict(heads or {})
        self.tie_weights()

    @property
    def backbone(self) -> nn.Module:
        return getattr(self, self.cfg.family)

    def tie_weights(self) -> None:
        """Tie the vocabulary heads to the backbone's token embedding (again, after `backbone.tok_emb` is replaced)."""
        tie_heads(self.heads, self.backbone.tok_emb)

    def get_output_embeddings(self) -> nn.Module | None:
        """As transformers' `get_output_embeddings`: the module holding the (V, D) output matrix (the tied `tok_emb`,
        or a causal-LM head's own projection), None for a model without a vocabulary head."""
        return output_embeddings(self.heads)
