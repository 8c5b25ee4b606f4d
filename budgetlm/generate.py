"""Text generation with a decoder: sampling (greedy, temperature, top-k, top-p, repetition penalty) and the
decoding loop, with a KV cache or without (recomputing the whole context every step; kept for tests and
the cache benchmark).

Both paths see exactly the same context: when the text outgrows model.max_seq_len, the window restarts at
the last max_seq_len // 2 tokens (the cached path re-reads that half once, then continues incrementally).
"""

from __future__ import annotations

from typing import Callable

import torch

from budgetlm.objectives.clm import END_OF_TEXT
from budgetlm.stages.config import GenerateConfig


def sample_next(logits: torch.Tensor, history: torch.Tensor, cfg: GenerateConfig, generator: torch.Generator) -> int:
    """One token id from next-token `logits` (V,), given the ids so far `history` (N,)."""
    logits = logits.float().clone()
    if cfg.repetition_penalty != 1.0 and len(history):  # as transformers' RepetitionPenaltyLogitsProcessor
        seen = logits[history]
        logits[history] = torch.where(seen > 0, seen / cfg.repetition_penalty, seen * cfg.repetition_penalty)
    if cfg.temperature == 0:
        return int(logits.argmax())
    logits = logits / cfg.temperature
    if 0 < cfg.top_k < logits.numel():
        kth = torch.topk(logits, cfg.top_k).values[-1]
        logits[logits < kth] = float("-inf")
    if cfg.top_p < 1.0:  # keep the most likely tokens until their mass reaches top_p (at least one)
        sorted_logits, order = logits.sort(descending=True)
        mass_before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
        logits[order[mass_before >= cfg.top_p]] = float("-inf")
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))


@torch.inference_mode()  # lighter than no_grad: no version counters on the per-token tensors
def generate(
    model,
    prompt: list[int],
    cfg: GenerateConfig,
    use_cache: bool = True,
    on_token: Callable[[int], None] | None = None,
    stop_token: int | None = END_OF_TEXT,
) -> list[int]:
    """Generated ids after `prompt` (not including it, nor the stop token). `on_token` streams each one."""
    if not prompt:
        raise ValueError("generate needs at least one prompt token")
    model.eval()
    decoder, head = model.decoder, model.heads["lm"]
    # The head's (V, D) matrix as a contiguous (D, V) copy, made once per call and used by both paths: at batch 1
    # MKL runs hidden @ W.T (F.linear) on a slow matvec path, ~3x slower than hidden @ W_t for the 16,384 x 256
    # head on a 1-thread AVX2 EPYC, and with the cache that matvec is a large part of each step (issue 3).
    head_t = head.matrix(decoder.tok_emb.weight).t().contiguous()  # (D, V)
    max_len = decoder.cfg.max_seq_len
    ids = torch.tensor(prompt, dtype=torch.long)
    start = max(0, len(ids) - max_len)  # context window: ids[start:]
    generator = torch.Generator().manual_seed(cfg.seed)
    cache = None
    out: list[int] = []

    def logits_of(x: torch.Tensor, kv) -> torch.Tensor:  # (T,) -> next-token logits (V,)
        return decoder(x[None], cache=kv)[0, -1] @ head_t

    for _ in range(cfg.max_new_tokens):
        if len(ids) - start > max_len:
            start = len(ids) - max_len // 2
            cache = None
        if not use_cache:
            logits = logits_of(ids[start:], None)
        elif cache is None:  # (re)fill the cache with the whole window
            cache = decoder.new_cache(1)
            logits = logits_of(ids[start:], cache)
        else:  # only the newest token goes through the model
            logits = logits_of(ids[-1:], cache)
        token = sample_next(logits, ids, cfg, generator)
        if token == stop_token:
            break
        ids = torch.cat([ids, torch.tensor([token])])
        out.append(token)
        if on_token is not None:
            on_token(token)
    return out
