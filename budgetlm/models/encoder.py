"""The bidirectional Transformer encoder: ids -> hidden states (B, T, D). Heads live in heads.py."""

from __future__ import annotations

import torch
from torch import nn

from budgetlm.models.config import ModelConfig
from budgetlm.models.layers import Block, RotaryEmbedding, init_weights, layer_norm


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.position == "learned" else None
        self.type_emb = nn.Embedding(cfg.type_vocab_size, cfg.d_model) if cfg.type_vocab_size else None
        self.emb_norm = layer_norm(cfg) if cfg.embedding_norm else None
        self.drop = nn.Dropout(cfg.dropout)
        head_dim = cfg.d_model // cfg.n_heads
        self.rope = RotaryEmbedding(head_dim, cfg.max_seq_len, cfg.rope_theta) if cfg.position == "rope" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        if not cfg.first_block_norm:  # ModernBERT: emb_norm output feeds both block 0's attention and the residual
            self.blocks[0].attn_norm = nn.Identity()
        self.final_norm = layer_norm(cfg) if cfg.norm_position == "pre" else None
        init_weights(self, cfg)

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        """Token (+ learned position from `start`) (+ segment) embeddings, normed, dropped out: (B, T, D)."""
        T = input_ids.shape[1]
        if start + T > self.cfg.max_seq_len:
            raise ValueError(f"input reaches position {start + T}, model.max_seq_len is {self.cfg.max_seq_len}")
        x = self.tok_emb(input_ids)
        if self.pos_emb is not None:
            x = x + self.pos_emb.weight[start:start + T]
        if self.type_emb is not None:
            x = x + (self.type_emb(token_type_ids) if token_type_ids is not None else self.type_emb.weight[0])
        if self.emb_norm is not None:
            x = self.emb_norm(x)
        return self.drop(x)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        token_type_ids: torch.Tensor | None = None,  # (B, T)
        attention_mask: torch.Tensor | None = None,  # (B, T), 1 = real token, 0 = padding
    ) -> torch.Tensor:  # (B, T, D)
        x = self.embed(input_ids, token_type_ids)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): keys a query may attend to
        for block in self.blocks:
            x = block(x, mask, self.rope)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x
