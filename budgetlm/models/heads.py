"""Heads: hidden states in, logits out. Losses live with the objective or task, not here."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from budgetlm.models.config import HeadConfig, ModelConfig
from budgetlm.models.choices import ACTIVATIONS
from budgetlm.models.layers import layer_norm


class TiedProjection(nn.Module):
    """What the heads that project onto the token embedding share: the `Model` that owns the head ties it to its
    backbone's `tok_emb` when it is built (`tie`, as nanoGPT ties `lm_head` in `GPT.__init__`), so the head is
    called on hidden states alone. The embedding is kept as a plain attribute, outside nn.Module's registry: the
    state dict holds the matrix once, under the backbone's name (`encoder.tok_emb.weight`, which old checkpoints
    and the export rule tables key on), and safetensors never sees a shared tensor. The reference is to the
    module, not its weight, so `.to()`, `load_state_dict` and dtype casts, which update the module, are seen."""

    _embedding: nn.Embedding | None = None

    def tie(self, embedding: nn.Embedding) -> None:
        object.__setattr__(self, "_embedding", embedding)  # not nn.Module.__setattr__: no second registration

    def output_embeddings(self) -> nn.Module:
        """The module whose (V, D) `weight` is this head's vocabulary matrix."""
        if self._embedding is None:
            raise RuntimeError(f"{type(self).__name__} is not tied to a token embedding; build it inside a model")
        return self._embedding

    def matrix(self) -> torch.Tensor:
        """The (V, D) vocabulary matrix."""
        return self.output_embeddings().weight


class MaskedLMHead(TiedProjection):
    """dense -> activation -> LayerNorm -> tied vocabulary projection (+ bias), as in BERT.

    Called on the *selected* positions only (sparse prediction): the (N, V) projection is the most
    expensive matmul in a small MLM model, and only ~15% of positions carry a label.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.act = ACTIVATIONS[cfg.activation].fn
        self.norm = layer_norm(cfg)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # hidden: (N, D) selected positions; tied embedding (V, D) -> (N, V)
        return F.linear(self.norm(self.act(self.dense(hidden))), self.matrix(), self.bias)


class ReplacedTokenHead(nn.Module):
    """ELECTRA's discriminator head: dense -> activation -> one logit per position ("was this token replaced?")."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.act = ACTIVATIONS[cfg.activation].fn
        self.out = nn.Linear(cfg.d_model, 1)
        for lin in (self.dense, self.out):
            nn.init.normal_(lin.weight, 0.0, cfg.init_std)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # hidden: (B, T, D) -> logits (B, T)
        return self.out(self.act(self.dense(hidden))).squeeze(-1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """(B, T, D) -> (B, D): the [CLS] state, or the mean over real (mask == 1) tokens only."""
    if how == "cls":
        return hidden[:, 0]
    m = attention_mask.unsqueeze(-1).to(hidden.dtype) if attention_mask is not None else torch.ones_like(hidden[..., :1])
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


# activation after the embedding head's projection: identity for the heads budgetlm trains; tanh as in LaBSE's
# sentence-transformers pipeline (Dense with Tanh), so such models import and export unchanged
EMBEDDING_ACTIVATIONS = {"identity": nn.Identity, "tanh": nn.Tanh}


class EmbeddingHead(nn.Module):
    """Sentence embeddings: pool ([CLS] or mean) [-> linear projection to `dim` -> `activation`]. Not normalised
    here: the cosine objectives and the `embed` command normalise.

    Optional post-processing, "all-but-the-top" (Mu & Viswanath 2018): with `top_pcs` = k > 0 the embedding is
    L2-normalised, centred and stripped of its projection on k fixed directions (the top principal components of
    the training sentences' embeddings, fitted after training: `set_top_components`). While the buffers are zero
    the output only differs from the plain head's by its length, which every cosine ignores; k = 0 is the plain head.
    """

    def __init__(self, cfg: ModelConfig, pooling: str = "mean", dim: int = 0, top_pcs: int = 0,
                 activation: str = "identity"):
        super().__init__()
        if activation not in EMBEDDING_ACTIVATIONS:
            raise ValueError(f"embedding activation {activation!r}; known: {', '.join(EMBEDDING_ACTIVATIONS)}")
        if activation != "identity" and not dim:
            raise ValueError("an embedding activation needs a projection (dim > 0)")
        self.pooling = pooling
        self.activation = activation
        self.act = EMBEDDING_ACTIVATIONS[activation]()  # no parameters: the state dict is the same
        self.proj = nn.Linear(cfg.d_model, dim) if dim else None
        if self.proj is not None:
            nn.init.normal_(self.proj.weight, 0.0, cfg.init_std)
            nn.init.zeros_(self.proj.bias)
        out = dim or cfg.d_model
        self.top_pcs = top_pcs
        if top_pcs:
            self.register_buffer("center", torch.zeros(out))
            self.register_buffer("components", torch.zeros(top_pcs, out))

    @contextmanager
    def raw(self):
        """Within the block the head skips its all-but-the-top post-processing (e.g. to compare the two)."""
        k, self.top_pcs = self.top_pcs, 0
        try:
            yield self
        finally:
            self.top_pcs = k

    def set_top_components(self, center: torch.Tensor, components: torch.Tensor) -> None:
        """Install the post-processing: `center` (D,), `components` (k, D) orthonormal rows; k = 0 removes it."""
        for name in ("center", "components"):
            if name in self._buffers:
                del self._buffers[name]
        self.top_pcs = int(components.shape[0])
        if self.top_pcs:
            self.register_buffer("center", center.detach().clone().float())
            self.register_buffer("components", components.detach().clone().float())

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        pooled = pool(hidden, attention_mask, self.pooling)  # (B, D)
        return self.postprocess(self.act(self.proj(pooled)) if self.proj is not None else pooled)

    def postprocess(self, out: torch.Tensor) -> torch.Tensor:
        """All-but-the-top on (B, D) outputs of the head without it (or their normalised form); identity at k = 0."""
        if not self.top_pcs:
            return out
        out = F.normalize(out.float(), dim=-1) - self.center
        return out - (out @ self.components.T) @ self.components


class SequenceClassificationHead(nn.Module):
    """pool ([CLS] or mean) -> dense -> activation [-> LayerNorm] -> dropout -> linear."""

    def __init__(self, cfg: ModelConfig, head: HeadConfig, num_labels: int):
        super().__init__()
        self.pooling = head.pooling
        self.dense = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.act = ACTIVATIONS[head.activation].fn
        self.norm = layer_norm(cfg) if head.norm else None
        self.drop = nn.Dropout(head.dropout)
        self.classifier = nn.Linear(cfg.d_model, num_labels)
        nn.init.normal_(self.dense.weight, 0.0, cfg.init_std)
        nn.init.normal_(self.classifier.weight, 0.0, cfg.init_std)
        for b in (self.dense.bias, self.classifier.bias):
            if b is not None:
                nn.init.zeros_(b)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        # hidden: (B, T, D) -> logits (B, num_labels)
        pooled = pool(hidden, attention_mask, self.pooling)
        h = self.act(self.dense(self.drop(pooled)))
        if self.norm is not None:
            h = self.norm(h)
        return self.classifier(self.drop(h))


class TiedLMHead(TiedProjection):
    """Language-model head of the encoder-decoder: a projection onto the shared token embedding, no parameters
    of its own (as BART/mBART with tied embeddings and a zero `final_logits_bias`)."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.matrix())  # (..., D) x (V, D) -> (..., V)


class CausalLMHead(TiedProjection):
    """Vocabulary projection of a decoder's (final-normed) hidden states, no bias (GPT-2, Llama).

    With `tie_embeddings` it projects with the input embedding matrix and owns no weights.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.proj = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if self.proj is not None:
            nn.init.normal_(self.proj.weight, 0.0, cfg.init_std)

    def output_embeddings(self) -> nn.Module:
        """The tied input embedding, or this head's own projection (`model.tie_embeddings=false`)."""
        return super().output_embeddings() if self.proj is None else self.proj

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # hidden: (..., D) -> (..., V)
        return F.linear(hidden, self.matrix())


class TokenClassificationHead(nn.Module):
    """dropout -> linear at every position, as BERT's token classifier (NER)."""

    def __init__(self, cfg: ModelConfig, head: HeadConfig, num_labels: int):
        super().__init__()
        self.drop = nn.Dropout(head.dropout)
        self.classifier = nn.Linear(cfg.d_model, num_labels)
        nn.init.normal_(self.classifier.weight, 0.0, cfg.init_std)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        # hidden: (B, T, D) -> logits (B, T, num_labels)
        return self.classifier(self.drop(hidden))


# what a saved model's `heads[...]["head_kind"]` names; every head is built as cls(model_cfg, head_cfg, num_labels)
HEAD_KINDS = {"sequence": SequenceClassificationHead, "token": TokenClassificationHead}
