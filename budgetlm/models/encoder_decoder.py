"""The T5/BART-style encoder-decoder: the bidirectional `Encoder`, a decoder stack, and a tied LM head.

Each decoder block is causal self-attention -> cross-attention over the encoder output -> feed-forward, with
the same pre-/post-LN choice, norms, FeedForward and RoPE as the encoder (layers.py). Token embeddings are
shared: the decoder and the LM head use `encoder.tok_emb` (Raffel et al. 2020; Lewis et al. 2020); the decoder
has its own positions. What only an encoder-decoder needs lives here: attention with a KV cache for
generation (self-attention keys/values grow a step at a time; cross-attention keys/values are computed once
per source and reused).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from budgetlm.config import ModelConfig
from budgetlm.models.encoder import Encoder
from budgetlm.models.heads import TiedLMHead
from budgetlm.models.layers import FeedForward, RotaryEmbedding, _rotate_half, init_weights, layer_norm


@dataclass
class LayerCache:
    """One decoder block's cached keys/values, each (B, H, t, hd)."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None
    cross_k: torch.Tensor | None = None
    cross_v: torch.Tensor | None = None


@dataclass
class DecoderCache:
    """Everything a decoder needs to extend a sequence by one token without recomputing the prefix."""

    layers: list[LayerCache] = field(default_factory=list)
    length: int = 0  # decoder positions already processed

    @classmethod
    def empty(cls, n_layers: int) -> "DecoderCache":
        return cls([LayerCache() for _ in range(n_layers)])


def _rope_from(rope: RotaryEmbedding, q: torch.Tensor, k: torch.Tensor, start: int):
    """RoPE for positions start..start+T-1 (layers.RotaryEmbedding always starts at 0)."""
    T = q.shape[-2]
    cos, sin = rope.cos[start:start + T], rope.sin[start:start + T]
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    B, T, D = x.shape  # -> (B, H, T, hd)
    return x.view(B, T, n_heads, D // n_heads).transpose(1, 2)


class CausalSelfAttention(nn.Module):
    """Masked self-attention (fused QKV, like layers.SelfAttention) that can append to a `LayerCache`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, rope: RotaryEmbedding | None, cache: LayerCache | None, start: int) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = (_heads(t, self.n_heads) for t in self.qkv(x).split(D, dim=-1))  # each (B, H, T, hd)
        if rope is not None:
            q, k = _rope_from(rope, q, k, start)
        if cache is not None:
            if cache.k is not None:
                k, v = torch.cat([cache.k, k], dim=2), torch.cat([cache.v, v], dim=2)  # (B, H, start + T, hd)
            cache.k, cache.v = k, v
        drop = self.dropout if self.training else 0.0
        if start == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, dropout_p=drop)
        else:  # query i sits at position start + i and sees keys 0..start + i
            mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class CrossAttention(nn.Module):
    """Decoder queries attend to the encoder output; its keys/values are cached once per source."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=cfg.bias)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None,
                cache: LayerCache | None) -> torch.Tensor:
        B, T, D = x.shape
        q = _heads(self.q(x), self.n_heads)  # (B, H, T, hd)
        if cache is not None and cache.cross_k is not None:
            k, v = cache.cross_k, cache.cross_v
        else:
            k, v = (_heads(t, self.n_heads) for t in self.kv(memory).split(D, dim=-1))  # (B, H, S, hd)
            if cache is not None:
                cache.cross_k, cache.cross_v = k, v
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=memory_mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class DecoderBlock(nn.Module):
    """Self-attention, cross-attention, feed-forward; each pre-LN (x + f(norm(x))) or post-LN (norm(x + f(x)))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre_norm = cfg.norm_position == "pre"
        self.attn_norm, self.attn = layer_norm(cfg), CausalSelfAttention(cfg)
        self.cross_norm, self.cross = layer_norm(cfg), CrossAttention(cfg)
        self.mlp_norm, self.mlp = layer_norm(cfg), FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, memory, memory_mask, rope, cache: LayerCache | None, start: int) -> torch.Tensor:
        steps = (
            (self.attn_norm, lambda h: self.attn(h, rope, cache, start)),
            (self.cross_norm, lambda h: self.cross(h, memory, memory_mask, cache)),
            (self.mlp_norm, self.mlp),
        )
        for norm, f in steps:
            x = x + self.drop(f(norm(x))) if self.pre_norm else norm(x + self.drop(f(x)))
        return x


class Decoder(nn.Module):
    """Decoder ids (B, T) + encoder output (B, S, D) -> hidden states (B, T, D). Token embeddings come from outside."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.position == "learned" else None
        self.emb_norm = layer_norm(cfg) if cfg.embedding_norm else None
        self.drop = nn.Dropout(cfg.dropout)
        head_dim = cfg.d_model // cfg.n_heads
        self.rope = RotaryEmbedding(head_dim, cfg.max_seq_len, cfg.rope_theta) if cfg.position == "rope" else None
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_decoder_layers or cfg.n_layers))
        self.final_norm = layer_norm(cfg) if cfg.norm_position == "pre" else None
        init_weights(self, cfg)

    def forward(
        self,
        ids: torch.Tensor,  # (B, T) decoder input ids
        tok_emb: nn.Embedding,  # the shared token embedding
        memory: torch.Tensor,  # (B, S, D) encoder output
        memory_mask: torch.Tensor | None,  # (B, 1, 1, S) bool: source positions a query may attend to
        cache: DecoderCache | None = None,
    ) -> torch.Tensor:  # (B, T, D)
        T = ids.shape[1]
        start = cache.length if cache is not None else 0
        if start + T > self.cfg.max_seq_len:
            raise ValueError(f"decoder input reaches position {start + T}, model.max_seq_len is {self.cfg.max_seq_len}")
        x = tok_emb(ids)
        if self.pos_emb is not None:
            x = x + self.pos_emb.weight[start:start + T]
        if self.emb_norm is not None:
            x = self.emb_norm(x)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, memory, memory_mask, self.rope, cache.layers[i] if cache is not None else None, start)
        if cache is not None:
            cache.length += T
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x


def source_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) 1/0 padding mask -> (B, 1, 1, S) bool for attention, or None when nothing is padded."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


class EncoderDecoderModel(nn.Module):
    """`encoder` and `decoder` return hidden states; `heads["lm"]` projects onto the shared embedding."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.heads = nn.ModuleDict({"lm": TiedLMHead()})

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(input_ids, None, attention_mask)  # (B, S, D)

    def decode(self, decoder_ids: torch.Tensor, memory: torch.Tensor, attention_mask: torch.Tensor | None = None,
               cache: DecoderCache | None = None) -> torch.Tensor:
        return self.decoder(decoder_ids, self.encoder.tok_emb, memory, source_mask(attention_mask), cache)  # (B, T, D)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.heads["lm"](hidden, self.encoder.tok_emb.weight)  # (..., V)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, decoder_ids: torch.Tensor) -> torch.Tensor:
        """Full logits (B, T, V) for teacher-forced decoder ids; training uses the sparse path in tasks/seq2seq.py."""
        return self.logits(self.decode(decoder_ids, self.encode(input_ids, attention_mask), attention_mask))
