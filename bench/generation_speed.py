"""Generation speed with the KV cache vs without (recomputing the whole context for every new token).

A decoder (default: 4 layers, d_model 256, 4 heads, GPT-2 options, max_seq_len 512) greedily generates
`--new-tokens` tokens after a `--prompt-tokens`-token random prompt with `budgetlm.generate.generate`, once
with `use_cache=True` and once with `use_cache=False`, alternating (cache, none, none, cache, ...) for
`--repeats` rounds; the ratio is the median of per-round ratios. Both paths must produce the same tokens
(checked). End-of-text is not a stop token here, so every run generates exactly --new-tokens tokens.

    python bench/generation_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from budgetlm.models.config import ModelConfig
from budgetlm.generate.config import GenerateConfig
from budgetlm.generate import generate
from budgetlm.models import build_lm_model
from common import machine_line, write_json
from gpt_throughput import GPT2_ARCH


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--prompt-tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--vocab-size", type=int, default=16384)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", metavar="OUT")
    args = p.parse_args(argv)
    if args.prompt_tokens + args.new_tokens > args.max_seq_len:
        p.error("--prompt-tokens + --new-tokens must fit in --max-seq-len (no window restarts in this benchmark)")
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    cfg = ModelConfig(vocab_size=args.vocab_size, d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads,
                      d_ff=4 * args.d_model, max_seq_len=args.max_seq_len, dropout=0.0, **GPT2_ARCH)
    cfg.validate()
    torch.manual_seed(0)
    model = build_lm_model(cfg).eval()
    prompt = torch.randint(5, args.vocab_size, (args.prompt_tokens,), generator=torch.Generator().manual_seed(0)).tolist()
    greedy = GenerateConfig(max_new_tokens=args.new_tokens, temperature=0.0)

    def timed(use_cache: bool) -> tuple[float, list[int]]:
        t0 = time.perf_counter()
        out = generate(model, prompt, greedy, use_cache=use_cache, stop_token=None)
        return time.perf_counter() - t0, out

    print(machine_line(), flush=True)
    timed(True)  # warm-up
    seconds = {"cache": [], "no_cache": []}
    ratios = []
    for r in range(args.repeats):
        order = (True, False) if r % 2 == 0 else (False, True)
        took = {}
        for use_cache in order:
            dt, out = timed(use_cache)
            took[use_cache] = (dt, out)
            seconds["cache" if use_cache else "no_cache"].append(dt)
        assert took[True][1] == took[False][1], "cached and recomputed generations differ"
        assert len(took[True][1]) == args.new_tokens
        ratios.append(took[False][0] / took[True][0])
        print(f"  round {r + 1}/{args.repeats}: cache {args.new_tokens / took[True][0]:,.1f} tokens/s, "
              f"no cache {args.new_tokens / took[False][0]:,.1f} tokens/s", flush=True)
    load_end = os.getloadavg()
    tps = {k: args.new_tokens / statistics.median(v) for k, v in seconds.items()}
    ratio = statistics.median(ratios)
    print(f"{args.new_tokens} new tokens after {args.prompt_tokens}: with KV cache {tps['cache']:,.1f} tokens/s, without "
          f"{tps['no_cache']:,.1f} tokens/s; speed-up median {ratio:.1f}x (min {min(ratios):.1f}, max {max(ratios):.1f}; "
          f"target >= 5); {args.threads} thread(s); load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    result = {"config": vars(args), "tokens_per_s": tps, "ratio_median": ratio, "round_ratios": ratios,
              "loadavg_start": load_start, "loadavg_end": load_end}
    if args.json:
        write_json(Path(args.json), result)
    return result


if __name__ == "__main__":
    main()
