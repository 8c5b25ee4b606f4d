"""The GPT-style decoder: the encoder's embeddings and blocks with causal self-attention -> hidden states (B, T, D).

Optionally (`segment_ids`) attention is also block-diagonal, so packed documents do not see each other; and
with a `KVCache` a forward pass continues after the cached positions (generation).
"""

from __future__ import annotations

import torch

from budgetlm.models.encoder import Encoder
from budgetlm.models.layers import KVCache


class Decoder(Encoder):
    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        segment_ids: torch.Tensor | None = None,  # (B, T) document index; attention stays within a document
        cache: KVCache | None = None,  # positions already seen; extended by this call
    ) -> torch.Tensor:  # (B, T, D)
        T = input_ids.shape[1]
        start = cache.length if cache is not None else 0
        x = self.embed(input_ids, start=start)
        mask = causal_mask(T, start, segment_ids)
        is_causal = mask is None and start == 0 and T > 1  # SDPA's own causal path: no mask tensor at all
        for i, block in enumerate(self.blocks):
            x = block(x, mask, self.rope, is_causal=is_causal, cache=cache, layer=i)
        if cache is not None:
            cache.length += T
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x

    def new_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        cfg = self.cfg
        dtype = self.tok_emb.weight.dtype
        return KVCache(cfg.n_layers, batch, cfg.n_heads, max_len or cfg.max_seq_len, cfg.d_model // cfg.n_heads, dtype)


def causal_mask(T: int, start: int = 0, segment_ids: torch.Tensor | None = None) -> torch.Tensor | None:
    """Bool mask, True = may attend, for T queries at positions start .. start+T-1 over keys 0 .. start+T-1.

    None when SDPA needs no tensor: plain causal attention from position 0 (is_causal) or one new query
    that may see every cached key. Segments apply within this call only (not to cached keys).
    """
    if segment_ids is not None:
        if start:
            raise ValueError("segment_ids with a KV cache are not supported")
        same = segment_ids[:, :, None] == segment_ids[:, None, :]  # (B, T, T)
        return (same & torch.ones(T, T, dtype=torch.bool).tril())[:, None]  # (B, 1, T, T)
    if start == 0 or T == 1:
        return None
    q_pos = torch.arange(start, start + T)[:, None]  # (T, 1)
    return q_pos >= torch.arange(start + T)[None, :]  # (T, S)
