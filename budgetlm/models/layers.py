"""Building blocks shared by every architecture: attention, feed-forward (plain or gated), RoPE, blocks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from budgetlm.config import ModelConfig

ACTIVATION_FNS = {
    "gelu": F.gelu,  # exact erf GELU, as BERT / HF "gelu"
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "tanh": torch.tanh,
}


def layer_norm(cfg: ModelConfig) -> nn.LayerNorm:
    return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)


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

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = q.shape[-2]  # q, k: (B, H, T, hd)
        cos, sin = self.cos[:T], self.sin[:T]
        return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused QKV projection and `scaled_dot_product_attention`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, rope: RotaryEmbedding | None) -> torch.Tensor:
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, hd)
        if rope is not None:
            q, k = rope(q, k)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, hd)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class FeedForward(nn.Module):
    """Position-wise MLP; with `glu` the input projection is doubled and split into (value, gate)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.glu = cfg.glu
        self.act = ACTIVATION_FNS[cfg.activation]
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

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, rope: RotaryEmbedding | None) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.drop(self.attn(self.attn_norm(x), attn_mask, rope))
            return x + self.drop(self.mlp(self.mlp_norm(x)))
        x = self.attn_norm(x + self.drop(self.attn(x, attn_mask, rope)))
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
