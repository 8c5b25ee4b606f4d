"""Text generation with a decoder: the decoding loop, with a KV cache or without (recomputing the whole context
every step; kept for tests and the cache benchmark); sampling is generate/sampling.py's.

Both paths see exactly the same context: when the text outgrows model.max_seq_len, the window restarts at
the last max_seq_len // 2 tokens (the cached path re-reads that half once, then continues incrementally).
"""

from __future__ import annotations

from typing import Callable

import torch

from budgetlm.generate.sampling import sample
from budgetlm.objectives.clm import END_OF_TEXT
from budgetlm.generate.config import GenerateConfig


def sample_next(logits: torch.Tensor, history: torch.Tensor, cfg: GenerateConfig, generator: torch.Generator) -> int:
    """One token id from next-token `logits` (V,), given the ids so far `history` (N,)."""
    history = history.long()[None] if len(history) else None
    return int(sample(logits[None], generator, cfg.temperature, cfg.top_k, cfg.top_p, cfg.repetition_penalty, history)[0])


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
    decoder = model.decoder
    # The head's (V, D) matrix as a contiguous (D, V) copy, made once per call and used by both paths: at batch 1
    # MKL runs hidden @ W.T (F.linear) on a slow matvec path, ~3x slower than hidden @ W_t for the 16,384 x 256
    # head on a 1-thread AVX2 EPYC, and with the cache that matvec is a large part of each step (issue 3).
    head_t = model.get_output_embeddings().weight.t().contiguous()  # (D, V)
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
