"""The T5/BART-style encoder-decoder: the bidirectional `Encoder`, a decoder stack, and a tied LM head.

Each decoder block is causal self-attention -> cross-attention over the encoder output -> feed-forward, with
the same pre-/post-LN choice, norms, FeedForward and RoPE as the encoder (layers.py). Token embeddings are
shared: the decoder and the LM head use `encoder.tok_emb` (Raffel et al. 2020; Lewis et al. 2020); the decoder
has its own positions. The causal self-attention and its KV cache are the decoder-only model's
(layers.SelfAttention writing into KVCache's preallocated buffers); what only an encoder-decoder needs lives
here: cross-attention, whose keys/values are computed once per source and reused by every generation step.
"""

from __future__ import annotations

import torch
from torch import nn

from budgetlm.models.config import ModelConfig
from budgetlm.models.decoder import causal_mask
from budgetlm.models.encoder import Encoder
from budgetlm.models.heads import TiedLMHead
from budgetlm.models.layers import FeedForward, KVCache, RotaryEmbedding, SelfAttention, attention, init_weights, layer_norm


class DecoderCache(KVCache):
    """Everything the decoder needs to extend a sequence without recomputing the prefix: self-attention
    keys/values in KVCache's preallocated buffers (written in place, no torch.cat per step), and each block's
    cross-attention keys/values, computed from the encoder output at the first call and reused."""

    def __init__(self, n_layers: int, batch: int, n_heads: int, max_len: int, head_dim: int, dtype=torch.float32):
        super().__init__(n_layers, batch, n_heads, max_len, head_dim, dtype)
        self.cross_k: list[torch.Tensor | None] = [None] * n_layers  # each (B, H, S, hd) once computed
        self.cross_v: list[torch.Tensor | None] = [None] * n_layers


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    B, T, D = x.shape  # -> (B, H, T, hd)
    return x.view(B, T, n_heads, D // n_heads).transpose(1, 2)


class CrossAttention(nn.Module):
    """Decoder queries attend to the encoder output; its keys/values are cached once per source."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=cfg.bias)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.attention_dropout_p

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None,
                cache: DecoderCache | None, layer: int) -> torch.Tensor:
        B, T, D = x.shape
        q = _heads(self.q(x), self.n_heads)  # (B, H, T, hd)
        if cache is not None and cache.cross_k[layer] is not None:
            k, v = cache.cross_k[layer], cache.cross_v[layer]
        else:
            k, v = (_heads(t, self.n_heads) for t in self.kv(memory).split(D, dim=-1))  # (B, H, S, hd)
            if cache is not None:
                cache.cross_k[layer], cache.cross_v[layer] = k, v
        y = attention(q, k, v, attn_mask=memory_mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class DecoderBlock(nn.Module):
    """Self-attention, cross-attention, feed-forward; each pre-LN (x + f(norm(x))) or post-LN (norm(x + f(x)))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre_norm = cfg.norm_position == "pre"
        self.attn_norm, self.attn = layer_norm(cfg), SelfAttention(cfg)  # made causal by the mask / is_causal
        self.cross_norm, self.cross = layer_norm(cfg), CrossAttention(cfg)
        self.mlp_norm, self.mlp = layer_norm(cfg), FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, memory, memory_mask, rope, attn_mask, is_causal: bool, cache: DecoderCache | None,
                layer: int) -> torch.Tensor:
        steps = (
            (self.attn_norm, lambda h: self.attn(h, attn_mask, rope, is_causal=is_causal, cache=cache, layer=layer)),
            (self.cross_norm, lambda h: self.cross(h, memory, memory_mask, cache, layer)),
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
        mask = causal_mask(T, start)  # once for all blocks; None from position 0 (SDPA's is_causal) or for one token
        is_causal = start == 0 and T > 1
        for i, block in enumerate(self.blocks):
            x = block(x, memory, memory_mask, self.rope, mask, is_causal, cache, i)
        if cache is not None:
            cache.length += T
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x

    def new_cache(self, batch: int, max_len: int | None = None) -> DecoderCache:
        cfg = self.cfg
        dtype = self.blocks[0].attn.qkv.weight.dtype
        return DecoderCache(len(self.blocks), batch, cfg.n_heads, max_len or cfg.max_seq_len, cfg.d_model // cfg.n_heads, dtype)


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
        self.heads["lm"].tie(self.encoder.tok_emb)

    def get_output_embeddings(self) -> nn.Module:
        """The module holding the (V, D) output matrix: the shared token embedding (as transformers' method)."""
        return self.heads["lm"].output_embeddings()

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(input_ids, None, attention_mask)  # (B, S, D)

    def decode(self, decoder_ids: torch.Tensor, memory: torch.Tensor, attention_mask: torch.Tensor | None = None,
               cache: DecoderCache | None = None) -> torch.Tensor:
        return self.decoder(decoder_ids, self.encoder.tok_emb, memory, source_mask(attention_mask), cache)  # (B, T, D)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.heads["lm"](hidden)  # (..., V)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, decoder_ids: torch.Tensor) -> torch.Tensor:
        """Full logits (B, T, V) for teacher-forced decoder ids; training uses the sparse path in objectives/seq2seq.py."""
        return self.logits(self.decode(decoder_ids, self.encode(input_ids, attention_mask), attention_mask))
