"""Encoder-decoder generation speed: greedy decoding of 256 new tokens with the KV cache (self-attention keys/
values appended per step, cross-attention keys/values computed once) vs recomputing the decoder prefix every
step. Runs are interleaved (cached, uncached, cached, ...) and the median ratio is reported with the load average,
in wall-clock and in CPU time of this (single-threaded) process: on a shared, oversubscribed machine the
process is descheduled most of the time and only the CPU-time figures say what the code costs.

    python bench/seq2seq_generation_speed.py [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from budgetlm.models import build_seq2seq_model
from budgetlm.models.config import ModelConfig
from budgetlm.generate.seq2seq import generate
from common import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(family="encoder_decoder", vocab_size=8192, d_model=256, n_layers=4, n_heads=4, d_ff=1024,
                      max_seq_len=args.new_tokens + 1, dropout=0.0, type_vocab_size=0)
    cfg.validate()
    model = build_seq2seq_model(cfg).eval()
    source = torch.randint(5, cfg.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))  # no [SEP]: never stops early
    times = {True: [], False: []}
    cpu = {True: [], False: []}
    outputs = {}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for use_cache in (True, False):
            t0, c0 = time.perf_counter(), time.process_time()
            out = generate(model, source, max_new_tokens=args.new_tokens, use_cache=use_cache)
            times[use_cache].append(time.perf_counter() - t0)
            cpu[use_cache].append(time.process_time() - c0)
            outputs[use_cache] = out
    assert outputs[True].shape[1] == args.new_tokens + 1, "generation stopped early; the comparison needs full length"
    assert torch.equal(outputs[True], outputs[False]), "cached and uncached generations differ"
    ratios = [u / c for c, u in zip(times[True], times[False])]
    cpu_ratios = [u / c for c, u in zip(cpu[True], cpu[False])]
    result = {
        "model": "encoder-decoder d_model 256, 4+4 layers, 4 heads, vocab 8192; source 64 tokens, batch 1, greedy",
        "new_tokens": args.new_tokens, "threads": args.threads, "rounds": args.rounds,
        "cached_tokens_per_s": round(args.new_tokens / statistics.median(times[True]), 1),
        "uncached_tokens_per_s": round(args.new_tokens / statistics.median(times[False]), 1),
        "median_speedup": round(statistics.median(ratios), 2),
        "cached_tokens_per_cpu_s": round(args.new_tokens / statistics.median(cpu[True]), 1),
        "uncached_tokens_per_cpu_s": round(args.new_tokens / statistics.median(cpu[False]), 1),
        "median_speedup_cpu_time": round(statistics.median(cpu_ratios), 2),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    result["machine"] = machine_line()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
