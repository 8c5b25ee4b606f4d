"""Time one AdamW update of the small presets' encoder (docs/benchmarks.md): fused vs foreach vs per-tensor.

The model is the one the preset sst2-budget-pretrain builds (read from the preset; its 16k vocabulary);
gradients are random. One thread by default, as the fine-tuning presets run.

    python bench/optimizer_update.py [--config PRESET_OR_YAML] [--threads 1] [--steps 50]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from budgetlm.config import build_config
from budgetlm.stages.config import PretrainConfig
from budgetlm.models import build_mlm_model
from common import machine_line


def time_update(params: list[torch.nn.Parameter], steps: int, **kind) -> float:
    opt = torch.optim.AdamW(params, lr=1e-3, **kind)
    for _ in range(5):
        opt.step()
    t = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="sst2-budget-pretrain", help="pre-training preset or YAML file")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    preset = build_config(PretrainConfig, args.config)
    cfg = dataclasses.replace(preset.model, vocab_size=preset.data.vocab_size)  # the tokenizer's size, 0 in the preset
    params = list(build_mlm_model(cfg).parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    n = sum(p.numel() for p in params)
    times = {name: time_update(params, args.steps, **kind) for name, kind in
             [("fused", {"fused": True}), ("foreach", {"foreach": True}), ("per-tensor", {"foreach": False})]}
    print(machine_line())
    print(f"AdamW update of {n / 1e6:.2f}M parameters in {len(params)} tensors, {args.threads} thread(s):")
    for name, t in times.items():
        print(f"  {name:<11} {t * 1e3:6.2f} ms   ({times['foreach'] / t:.2f}x foreach)")


if __name__ == "__main__":
    main()
