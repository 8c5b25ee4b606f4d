"""The one sampler every generative family uses: next-token logits (B, V) -> ids (B,), with repetition penalty,
temperature (0 = greedy), top-k and top-p (nucleus) filtering, drawn from a seeded `torch.Generator`."""

from __future__ import annotations

import torch


def sample(
    logits: torch.Tensor,  # (B, V) next-token logits
    generator: torch.Generator | None,
    temperature: float = 1.0,
    top_k: int = 0,  # 0 = every token
    top_p: float = 1.0,  # 1 = every token
    repetition_penalty: float = 1.0,  # 1 = none
    history: torch.Tensor | None = None,  # (B, N) ids so far, for the repetition penalty
) -> torch.Tensor:  # (B,) ids
    logits = logits.float()
    if repetition_penalty != 1.0 and history is not None and history.numel():  # as transformers' RepetitionPenaltyLogitsProcessor
        seen = logits.gather(-1, history)
        logits = logits.scatter(-1, history, torch.where(seen > 0, seen / repetition_penalty, seen * repetition_penalty))
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:  # keep the most likely tokens until their mass reaches top_p (at least one)
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        mass_before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
        drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)
        logits = logits.masked_fill(drop, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
