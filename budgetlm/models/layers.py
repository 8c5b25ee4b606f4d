"""Building blocks shared by every architecture: norms, attention (bidirectional or causal, with a KV cache),
feed-forward (plain or gated), RoPE, blocks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from budgetlm.models.choices import ACTIVATIONS, NORMS

if TYPE_CHECKING:  # annotations only
    from budgetlm.models.config import ModelConfig


def layer_norm(cfg: ModelConfig) -> nn.Module:
    """The normalisation layer `cfg.norm` names (LayerNorm or RMSNorm)."""
    return NORMS[cfg.norm](cfg)


class RotaryEmbedding(nn.Module):
    """RoPE in the GPT-NeoX / HF `rotate_half` layout (Su et al. 2021), cached for max_seq_len."""

    def __init__(self, head_dim: int, max_seq_len: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        t = torch.arange(max_seq_len, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)  # (T, hd/2)
        emb = torch.cat([freqs, freqs], dim=-1)  # (T, hd)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        T = q.shape[-2]  # q, k: (B, H, T, hd) at positions start .. start + T - 1
        cos, sin = self.cos[start:start + T], self.sin[start:start + T]
        return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


class KVCache:
    """Keys and values of the positions a decoder has already seen, one preallocated buffer per layer.

    A forward pass with a cache attends to the cached positions plus its own, appends its keys/values, and
    the caller advances `length` once all layers have run (`Decoder.forward` does), so generating token t
    costs O(t) instead of recomputing the whole prefix.
    """

    def __init__(self, n_layers: int, batch: int, n_heads: int, max_len: int, head_dim: int, dtype=torch.float32):
        shape = (batch, n_heads, max_len, head_dim)
        self.k = [torch.empty(shape, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.empty(shape, dtype=dtype) for _ in range(n_layers)]
        self.max_len = max_len
        self.length = 0  # positions filled

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H, T, hd) after the cached positions; return all keys/values (B, H, length + T, hd)."""
        end = self.length + k.shape[2]
        self.k[layer][:, :, self.length:end] = k
        self.v[layer][:, :, self.length:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw) -> torch.Tensor:
    """`scaled_dot_product_attention`, kept in fp32 under CPU bf16 autocast.

    CPU autocast runs SDPA in bf16, and PyTorch's bf16 flash-attention backward on CPU is several times slower
    than the fp32 one (31.8 vs 7.1 ms per call at B 32, H 4, T 128, head 32; docs/benchmarks.md), while the
    linear layers around it gain from bf16. Elsewhere (fp32, or CUDA autocast) it is SDPA unchanged.
    """
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), **kw)
    return F.scaled_dot_product_attention(q, k, v, **kw)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused QKV projection and `scaled_dot_product_attention`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.attention_dropout_p

    def forward(
        self,
        x: torch.Tensor,  # (B, T, D)
        attn_mask: torch.Tensor | None,  # bool, broadcastable to (B, H, T, S): True = may attend
        rope: RotaryEmbedding | None,
        is_causal: bool = False,  # the plain causal mask (no cache, no attn_mask): SDPA builds it itself
        cache: KVCache | None = None,
        layer: int = 0,  # this layer's index in `cache`
    ) -> torch.Tensor:
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, hd)
        start = cache.length if cache is not None else 0
        if rope is not None:
            q, k = rope(q, k, start)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, H, S, hd), S = start + T
        y = attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0, is_causal=is_causal
        )  # (B, H, T, hd)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class FeedForward(nn.Module):
    """Position-wise MLP; with `glu` the input projection is doubled and split into (value, gate)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.glu = cfg.glu
        self.act = ACTIVATIONS[cfg.activation].fn
        self.fc_in = nn.Linear(cfg.d_model, cfg.d_ff * (2 if cfg.glu else 1), bias=cfg.bias)
        self.fc_out = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc_in(x)
        if self.glu:
            value, gate = h.chunk(2, dim=-1)  # ModernBERT order: act(first half) * second half
            h = self.act(value) * gate
        else:
            h = self.act(h)
        return self.fc_out(h)


class Block(nn.Module):
    """One Transformer block; `norm_position` chooses pre-LN (x + f(norm(x))) or post-LN (norm(x + f(x)))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre_norm = cfg.norm_position == "pre"
        self.attn_norm = layer_norm(cfg)
        self.attn = SelfAttention(cfg)
        self.mlp_norm = layer_norm(cfg)
        self.mlp = FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, rope: RotaryEmbedding | None, **attn_kw) -> torch.Tensor:
        # attn_kw: is_causal / cache / layer, passed through to SelfAttention
        if self.pre_norm:
            x = x + self.drop(self.attn(self.attn_norm(x), attn_mask, rope, **attn_kw))
            return x + self.drop(self.mlp(self.mlp_norm(x)))
        x = self.attn_norm(x + self.drop(self.attn(x, attn_mask, rope, **attn_kw)))
        return self.mlp_norm(x + self.drop(self.mlp(x)))


def init_weights(module: nn.Module, cfg: ModelConfig) -> None:
    """Normal(0, init_std) for weights, zeros for biases; residual output projections scaled by
    1/sqrt(2 * n_layers) in pre-LN models (GPT-2) so the residual stream does not grow with depth."""
    for name, p in module.named_parameters():
        if p.dim() >= 2:
            std = cfg.init_std
            if cfg.norm_position == "pre" and (name.endswith("attn.out.weight") or name.endswith("mlp.fc_out.weight")):
                std /= math.sqrt(2 * cfg.n_layers)
            nn.init.normal_(p, 0.0, std)
        elif "norm" in name and name.endswith("weight"):
            nn.init.ones_(p)
        else:
            nn.init.zeros_(p)
