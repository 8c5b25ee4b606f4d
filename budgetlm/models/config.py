"""Settings of the model (`ModelConfig`, the `model:` section) and of its classification head (`HeadConfig`).

Validation is pure: it checks values against each other, never the machine (budgetlm/runtime.py does that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from budgetlm.errors import UserError
from budgetlm.models.choices import ACTIVATIONS
from budgetlm.models.choices import NORMS as NORM_LAYERS
from budgetlm.schema import choice, positive, setting

# the names come from the registries that build the layers; "tanh" is only for the classification head (BERT's pooler)
FFN_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "tanh")
NORMS = tuple(NORM_LAYERS)
NORM_POSITIONS = ("pre", "post")  # Block and the encoders branch on these two
POSITIONS = ("learned", "rope")  # the encoders build a learned table or a RotaryEmbedding
# encoder: bidirectional (BERT); decoder: causal (GPT); encoder_decoder: T5/BART-style
MODEL_FAMILIES = ("encoder", "decoder", "encoder_decoder")


@dataclass
class ModelConfig:
    """The Transformer: an encoder, a decoder (the same blocks, causal), or an encoder-decoder (plus cross-attention)."""

    SECTION: ClassVar[str] = "model"

    family: str = setting("encoder", f"architecture, one of {MODEL_FAMILIES}: bidirectional encoder, causal decoder (GPT), or encoder_decoder (T5/BART-style, shared embeddings)")
    vocab_size: int = setting(0, "vocabulary size; 0 = take it from the tokenizer")
    d_model: int = setting(256, "hidden size")
    n_layers: int = setting(4, "number of Transformer blocks")
    n_heads: int = setting(4, "attention heads; must divide d_model")
    d_ff: int = setting(1024, "feed-forward inner size")
    max_seq_len: int = setting(128, "longest input in tokens (also the pre-training block length)")
    dropout: float = setting(0.1, "dropout on embeddings, residual branches and (unless attention_dropout says otherwise) attention probabilities")
    attention_dropout: float = setting(-1.0, "dropout on attention probabilities; -1 = model.dropout. On CPU any value above 0 "
                                       "sends attention down PyTorch's unfused path, which keeps every (T x T) probability "
                                       "matrix for the backward pass: 2-3x slower attention, GBs of memory at 512 tokens")
    activation: str = setting("gelu", f"feed-forward activation, one of {FFN_ACTIVATIONS}")
    glu: bool = setting(False, "gated feed-forward (GeGLU with gelu, SwiGLU with silu)")
    norm_position: str = setting("pre", "LayerNorm placement: 'pre' (stable at high LR) or 'post' (original BERT)")
    embedding_norm: bool = setting(True, "LayerNorm right after the embeddings (BERT, RoBERTa and ModernBERT all have one)")
    first_block_norm: bool = setting(True, "pre-LN: block 0 normalises its attention input; ModernBERT skips it, the embedding norm already did")
    position: str = setting("learned", f"position encoding, one of {POSITIONS}")
    rope_theta: float = setting(10000.0, "RoPE base frequency")
    bias: bool = setting(True, "biases in linear layers and LayerNorms (Cramming/ModernBERT drop them)")
    type_vocab_size: int = setting(2, "segment (token type) embeddings; 0 = none")
    norm: str = setting("layernorm", f"normalisation layer, one of {NORMS}")
    norm_eps: float = setting(1e-5, "LayerNorm / RMSNorm epsilon")
    tie_embeddings: bool = setting(True, "decoder: the LM head projects with the input embedding matrix (GPT-2) instead of its own")
    init_std: float = setting(0.02, "std of the normal initialisation")
    pad_token_id: int = setting(0, "id of [PAD] (set from the tokenizer)")
    n_decoder_layers: int = setting(0, "encoder_decoder: decoder blocks; 0 = as many as model.n_layers")

    def validate(self) -> None:
        choice(self, "family", MODEL_FAMILIES)
        positive(self, "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len")
        if self.n_decoder_layers < 0:
            raise UserError(f"model.n_decoder_layers must be >= 0, got {self.n_decoder_layers}")
        if self.family != "encoder" and self.type_vocab_size:
            raise UserError(f"model.family={self.family} has no segment embeddings: set model.type_vocab_size=0")
        if self.max_seq_len < 2:
            raise UserError(f"model.max_seq_len must be >= 2 ([CLS] and at least one token), got {self.max_seq_len}")
        if self.vocab_size < 0:
            raise UserError(f"model.vocab_size must be >= 0, got {self.vocab_size}")
        if self.d_model % self.n_heads:
            raise UserError(f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})")
        if self.position == "rope" and (self.d_model // self.n_heads) % 2:
            raise UserError("model.position=rope needs an even head size (d_model / n_heads)")
        choice(self, "activation", FFN_ACTIVATIONS)
        choice(self, "norm_position", NORM_POSITIONS)
        choice(self, "position", POSITIONS)
        choice(self, "norm", NORMS)
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.attention_dropout != -1.0 and not 0.0 <= self.attention_dropout < 1.0:
            raise UserError(f"model.attention_dropout must be in [0, 1) (or -1 to follow model.dropout), got {self.attention_dropout}")
        if not self.first_block_norm and (self.norm_position != "pre" or not self.embedding_norm):
            raise UserError("model.first_block_norm=false needs model.norm_position=pre and model.embedding_norm=true")
        if self.type_vocab_size < 0:
            raise UserError("model.type_vocab_size must be >= 0")

    @property
    def attention_dropout_p(self) -> float:
        """The dropout probability attention actually uses."""
        return self.dropout if self.attention_dropout == -1.0 else self.attention_dropout

    def parameter_estimate(self) -> int:
        """Roughly how many parameters these settings give (blocks, embeddings; heads and norms ignored)."""
        per_block = 4 * self.d_model * self.d_model + (3 if self.glu else 2) * self.d_model * self.d_ff
        blocks = self.n_layers
        if self.family == "encoder_decoder":  # decoder blocks add cross-attention
            blocks += 1.25 * (self.n_decoder_layers or self.n_layers)
        return int(blocks * per_block) + (self.vocab_size + self.max_seq_len) * self.d_model


POOLINGS = ("cls", "mean")
HEAD_ACTIVATIONS = ("tanh",) + FFN_ACTIVATIONS


@dataclass
class HeadConfig:
    """Sequence-classification head: pool -> dense -> activation [-> LayerNorm] -> dropout -> linear."""

    SECTION: ClassVar[str] = "head"

    pooling: str = setting("cls", f"how to pool token states, one of {POOLINGS}")
    activation: str = setting("tanh", f"activation after the dense layer, one of {HEAD_ACTIVATIONS}")
    norm: bool = setting(False, "LayerNorm after the activation (ModernBERT's head has one)")
    dropout: float = setting(0.1, "dropout before the final linear layer")

    def validate(self) -> None:
        choice(self, "pooling", POOLINGS)
        choice(self, "activation", HEAD_ACTIVATIONS)
        if not 0.0 <= self.dropout < 1.0:
            raise UserError("head.dropout must be in [0, 1)")
