"""Causal-LM training throughput on CPU: budgetlm's decoder vs transformers.GPT2LMHeadModel, same sizes, batch, run.

Both models are the same architecture (GPT-2: pre-LN, learned positions, tanh GELU, biases, tied LM head) and
train on one fixed random batch of ids: next-token loss over every position -> backward -> AdamW.step ->
zero_grad(set_to_none=True). budgetlm runs `objectives.clm` (next_token_targets + clm_loss), the real
pre-training path; the peer is `GPT2LMHeadModel(GPT2Config(...))`, its logits for the same T inputs scored with
the same cross-entropy against the same T targets (its own `labels=` path would shift and drop one position).

Timed rounds alternate (peer k steps, budgetlm k, budgetlm k, peer k, ...) so load drift on a shared machine
hits both; the reported ratio is the median of per-round ratios. Load average is recorded at start and end.

    python bench/gpt_throughput.py                          # 4 layers, d 256, 4 heads, seq 128, batch 32
    python bench/gpt_throughput.py --steps 2 --warmup 1 --round-steps 1   # smoke test
    python bench/gpt_throughput.py --precision bf16        # both under bf16 autocast
    python bench/gpt_throughput.py --precision bf16 --peer-precision fp32

`--precision` is budgetlm's `train.precision` (bf16: forward and loss under CPU bfloat16 autocast); the peer runs
the same unless `--peer-precision` says otherwise. MFU is against the measured matmul peak of the precision
each model computes in.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from budgetlm.models.config import ModelConfig
from budgetlm.train.config import PRECISIONS
from budgetlm.models import build_lm_model, count_parameters
from budgetlm.models.config import ModelConfig
from budgetlm.objectives.clm import clm_loss, next_token_targets
from budgetlm.train.config import PRECISIONS
from budgetlm.train.memory import tune_allocator
from budgetlm.train.precision import autocast, check_supported
from common import machine_line, matmul_peak_gflops, system_info, write_json

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
GPT2_ARCH = dict(family="decoder", position="learned", norm="layernorm", glu=False, bias=True, activation="gelu_tanh",
                 embedding_norm=False, type_vocab_size=0, tie_embeddings=True, norm_position="pre")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=16, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model before timing")
    p.add_argument("--round-steps", type=int, default=2, help="steps per model per alternating timed round")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128, help="tokens per sequence fed to each model (each predicts seq_len targets)")
    p.add_argument("--vocab-size", type=int, default=16384, help="budgetlm's default tokenizer size")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=1024)
    p.add_argument("--dropout", type=float, default=0.0, help="both models (GPT2Config resid/embd/attn_pdrop)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="budgetlm's train.precision")
    p.add_argument("--peer-precision", choices=PRECISIONS, help="the peer's (default: --precision)")
    p.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    args = p.parse_args(argv)
    args.peer_precision = args.peer_precision or args.precision
    for name in ("steps", "round_steps", "batch_size", "seq_len", "vocab_size", "d_model", "n_layers", "n_heads", "d_ff"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    return args


def train_flops_per_step(cfg: ModelConfig, tokens: int) -> float:
    """6 x weights x tokens for every matmul a token goes through (blocks and the tied V x d head), plus
    attention's two activation matmuls (causal: counted in full, as kernels compute them)."""
    d = cfg.d_model
    block = 4 * d * d + 2 * d * cfg.d_ff
    return 6 * (cfg.n_layers * block + cfg.vocab_size * d) * tokens + cfg.n_layers * 3 * 2 * 2 * cfg.max_seq_len * d * tokens


def main(argv=None) -> dict:
    args = parse_args(argv)
    tuned = tune_allocator()  # process-wide: applies to both models
    if args.threads:
        torch.set_num_threads(args.threads)
    info = system_info(allocator_tuned=tuned)
    info["loadavg_start"] = os.getloadavg()
    B, T, V = args.batch_size, args.seq_len, args.vocab_size
    ids = torch.randint(5, V, (B, T + 1), generator=torch.Generator().manual_seed(args.seed))  # (B, T + 1)
    cfg = ModelConfig(vocab_size=V, d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads, d_ff=args.d_ff,
                      max_seq_len=T, dropout=args.dropout, **GPT2_ARCH)
    cfg.validate()
    torch.manual_seed(args.seed)
    ours = build_lm_model(cfg).train()
    torch.manual_seed(args.seed)
    peer = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_embd=args.d_model, n_layer=args.n_layers, n_head=args.n_heads,
                                      n_inner=args.d_ff, n_positions=T, resid_pdrop=args.dropout, embd_pdrop=args.dropout,
                                      attn_pdrop=args.dropout, activation_function="gelu_new")).train()
    inputs, labels = next_token_targets(ids)  # (B, T) each: the same targets for both

    def ours_step():
        with autocast(args.precision):
            return clm_loss(ours, inputs, labels)[0]

    def peer_step():
        with autocast(args.peer_precision):
            return torch.nn.functional.cross_entropy(peer(input_ids=inputs).logits.flatten(0, 1), labels.flatten())

    contenders = {"GPT2LMHeadModel": (peer, peer_step), "budgetlm decoder": (ours, ours_step)}
    precision_of = {"GPT2LMHeadModel": args.peer_precision, "budgetlm decoder": args.precision}
    opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, (m, _) in contenders.items()}
    seconds = {name: [] for name in contenders}

    def run(name: str, n: int, record: bool) -> float:
        model, step = contenders[name]
        total = 0.0
        for _ in range(n):
            t0 = time.perf_counter()
            step().backward()
            opts[name].step()
            opts[name].zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            total += dt
            if record:
                seconds[name].append(dt)
        return total

    for prec in {args.precision, args.peer_precision}:
        check_supported(prec)
    print(machine_line(), flush=True)
    print(f"config: {args.n_layers} layers, d_model {args.d_model}, {args.n_heads} heads, d_ff {args.d_ff}, vocab {V}, "
          f"batch {B} x {T}, dropout {args.dropout}; precision budgetlm {args.precision}, peer {args.peer_precision}; "
          f"{torch.get_num_threads()} threads; peer attention "
          f"{peer.config._attn_implementation}; parameters: peer {count_parameters(peer):,}, budgetlm {count_parameters(ours):,}",
          flush=True)
    for name in contenders:
        run(name, args.warmup, record=False)
    names = list(contenders)
    ratios = []
    n_rounds = math.ceil(args.steps / args.round_steps)
    for r in range(n_rounds):
        k = min(args.round_steps, args.steps - r * args.round_steps)
        took = {name: run(name, k, record=True) for name in (names if r % 2 == 0 else names[::-1])}
        ratios.append(took["GPT2LMHeadModel"] / took["budgetlm decoder"])
        print(f"  round {r + 1}/{n_rounds}: " + ", ".join(f"{n} {t / k:.3f} s/step" for n, t in took.items()), flush=True)
    peaks = {prec: matmul_peak_gflops(dtype=DTYPES[prec]) for prec in sorted({args.precision, args.peer_precision})}
    peak = peaks["fp32"] if "fp32" in peaks else matmul_peak_gflops()
    info["loadavg_end"] = os.getloadavg()
    flops = train_flops_per_step(cfg, B * T)
    summary = {}
    for name in names:
        s = statistics.median(seconds[name])
        prec = precision_of[name]
        summary[name] = {"precision": prec, "s_per_step_median": s, "tokens_per_s": B * T / s,
                         "mfu": flops / s / 1e9 / peaks[prec]}
        print(f"{name:>18}: {s:.3f} s/step, {B * T / s:,.0f} tokens/s, MFU {summary[name]['mfu']:.1%} of the {prec} peak")
    ratio = statistics.median(ratios)
    print(f"per-round ratio budgetlm/GPT2LMHeadModel: min {min(ratios):.2f}, median {ratio:.2f}, max {max(ratios):.2f} "
          f"(target >= 1.5); matmul peak " + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items()) + f" GFLOP/s; load average {info['loadavg_start'][0]:.2f} at start, "
          f"{info['loadavg_end'][0]:.2f} at end")
    result = {"config": vars(args), "system": info, "summary": summary, "round_ratios": ratios, "ratio_median": ratio,
              "matmul_peak_gflops": peak, "matmul_peaks_gflops": peaks, "per_step_seconds": seconds}
    if args.json:
        write_json(Path(args.json), result)
    return result


if __name__ == "__main__":
    main()
