"""Pre-training throughput on CPU: budgetlm vs transformers.BertForMaskedLM, same sizes, batch and run.

One training step, identical for both models:
  re-mask one fixed random batch with budgetlm's `mask_tokens` (15%, a fresh generator seeded by the step
  number, so both models see the same masks) -> forward with labels -> backward -> AdamW.step ->
  zero_grad(set_to_none=True).
The peer is `BertForMaskedLM(BertConfig(...))`; budgetlm is `build_mlm_model(ModelConfig(...))` with
`mlm_loss`, the real pre-training path (the vocabulary projection runs on the masked positions only).

Timed rounds alternate (peer k steps, budgetlm k steps, budgetlm k, peer k, ...) so load drift on a shared
machine hits both. Reported: median s/step, tokens/s (B x T per step), the ratio budgetlm/peer, analytic
model FLOPs and MFU against the matmul peak (fp32, or bf16 under --precision bf16) measured in the same run, page faults and kernel CPU time.

    python bench/throughput.py                   # defaults: the product config (see --help)
    python bench/throughput.py --steps 4 --warmup 1 --round-steps 1   # smoke test
    python bench/throughput.py --json throughput.json

See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable

import torch
from transformers import BertConfig, BertForMaskedLM

from budgetlm.models.config import ModelConfig
from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.models import build_mlm_model, count_parameters
from budgetlm.models.config import ModelConfig
from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.mlm import IGNORE_INDEX, mask_tokens, mlm_loss, vocabulary_loss
from budgetlm.train import precision
from budgetlm.train.compile import compile_blocks, compile_fn
from budgetlm.train.memory import tune_allocator
from common import machine_line, matmul_peak_gflops, system_info, write_json

# budgetlm's model as --arch; the peer is always BERT. "bert" is architecturally identical to
# BertForMaskedLM (post-LN, learned positions, exact GELU, biases, embedding LayerNorm, eps 1e-12).
ARCHS = {
    "bert": dict(norm_position="post", position="learned", activation="gelu", glu=False, bias=True,
                 embedding_norm=True, type_vocab_size=2, norm_eps=1e-12),
    "default": {},  # budgetlm's default ModelConfig (pre-LN)
    # as budgetlm.exporters.hf's "modernbert" family: its embedding LayerNorm replaces block 0's attention norm
    "modernbert": dict(norm_position="pre", position="rope", glu=True, bias=False, embedding_norm=True,
                       first_block_norm=False, type_vocab_size=0),
}

# special ids of the synthetic batch: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4
CLS_ID, SEP_ID, MASK_ID, N_SPECIAL = 2, 3, 4, 5


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Pre-training throughput of budgetlm vs transformers.BertForMaskedLM on CPU (same run).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--steps", type=int, default=20, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per model before timing")
    p.add_argument("--round-steps", type=int, default=2, help="steps per model per alternating timed round")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--vocab-size", type=int, default=30522)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=1024)
    p.add_argument("--arch", choices=sorted(ARCHS), default="bert",
                   help="budgetlm architecture: bert = same as BertForMaskedLM; default = budgetlm's "
                        "ModelConfig defaults (pre-LN); modernbert = pre-LN, RoPE, GeGLU, no biases")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    p.add_argument("--dropout", type=float, default=0.1,
                   help="both models' dropout, attention included (0 as in the pre-training presets)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="arithmetic of both models' forward pass and loss (bf16: torch.autocast, as train.precision)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile both: budgetlm as train.compile does (its blocks and MLM head loss), "
                        "the peer whole (model.compile(); fixed shapes here)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-tune-allocator", action="store_true",
                   help="leave glibc malloc at its defaults (by default budgetlm.train.memory.tune_allocator() "
                        "is applied to the whole process, so to both models)")
    p.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    args = p.parse_args(argv)
    for name in ("steps", "round_steps", "batch_size", "seq_len", "vocab_size", "d_model", "n_layers",
                 "n_heads", "d_ff"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    if args.warmup < 0 or args.threads < 0:
        p.error("--warmup and --threads must be >= 0")
    if args.seq_len < 3:
        p.error("--seq-len must be >= 3 ([CLS] ... [SEP])")
    return args


# ------------------------------------------------------------------------------------------- measuring

def train_flops_per_step(cfg: ModelConfig, batch_size: int, seq_len: int, n_predicted: int) -> float:
    """Analytic model FLOPs of one training step (forward + backward), counted, not profiled.

    The usual 6 x params x tokens rule (Kaplan et al. 2020, sec. 2.1): every weight matrix a token goes
    through costs 2 FLOPs per weight forward and 4 backward. Plus attention's two activation matmuls
    (scores Q K^T and the weighted sum A V), 2 x 2 x T x d per token per layer forward, x 3 for forward +
    backward. The MLM head (d x d transform + tied V x d vocabulary projection) runs on `n_predicted`
    positions: all B x T for BertForMaskedLM, only the masked ones for budgetlm (sparse prediction).
    Not counted: embedding lookups, norms, activations, softmax, dropout, the loss, the optimizer.
    """
    d, tokens = cfg.d_model, batch_size * seq_len
    d_ff_in = cfg.d_ff * (2 if cfg.glu else 1)  # a gated FFN's input projection is doubled
    block_weights = 3 * d * d + d * d + d * d_ff_in + cfg.d_ff * d  # qkv, attention out, fc_in, fc_out
    attention = 3 * 2 * 2 * seq_len * d  # per token per layer
    head_weights = d * d + cfg.vocab_size * d
    return (6 * cfg.n_layers * block_weights + cfg.n_layers * attention) * tokens + 6 * head_weights * n_predicted


@dataclass
class Contender:
    """One model under test: `loss_fn(inputs, labels) -> loss` plus its optimizer and per-step records."""

    name: str
    model: torch.nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    flops_per_step: float
    step_index: int = 0
    seconds: list[float] = field(default_factory=list)  # wall time per timed step
    faults: list[int] = field(default_factory=list)  # minor page faults per timed step
    user_s: list[float] = field(default_factory=list)  # CPU time in user space per timed step (all threads)
    sys_s: list[float] = field(default_factory=list)  # CPU time in the kernel per timed step

    def __post_init__(self):
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.model.train()  # dropout (--dropout) on

    def step(self, ids: torch.Tensor, special: torch.Tensor, mask_seed: int, vocab_size: int) -> None:
        # masking is part of the step (it is in real training too); identical work for both models
        gen = torch.Generator().manual_seed(mask_seed + self.step_index)
        inputs, labels = mask_tokens(ids, special, gen, ObjectiveConfig(), vocab_size, MASK_ID, N_SPECIAL)  # (B, T) each
        loss = self.loss_fn(inputs, labels)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_index += 1

    def run(self, n: int, ids, special, mask_seed: int, vocab_size: int, record: bool) -> float:
        """Run n steps; return their total wall time."""
        total = 0.0
        for _ in range(n):
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            self.step(ids, special, mask_seed, vocab_size)
            dt, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
            total += dt
            if record:
                self.seconds.append(dt)
                self.faults.append(r1.ru_minflt - r0.ru_minflt)
                self.user_s.append(r1.ru_utime - r0.ru_utime)
                self.sys_s.append(r1.ru_stime - r0.ru_stime)
        return total

    def summary(self, tokens_per_step: int, peak_gflops: float) -> dict:
        s = statistics.median(self.seconds)
        cpu = sum(self.user_s) + sum(self.sys_s)
        return {
            "name": self.name,
            "parameters": count_parameters(self.model),
            "steps_timed": len(self.seconds),
            "s_per_step_median": s,
            "s_per_step_min": min(self.seconds),
            "s_per_step_max": max(self.seconds),
            "tokens_per_s": tokens_per_step / s,
            "model_gflop_per_step": self.flops_per_step / 1e9,
            "achieved_gflops": self.flops_per_step / s / 1e9,
            "mfu": self.flops_per_step / s / 1e9 / peak_gflops,
            "cpu_s_per_step": cpu / len(self.seconds),
            "kernel_share_of_cpu": sum(self.sys_s) / cpu if cpu else 0.0,
            "minor_faults_per_step_median": statistics.median(self.faults),
        }


# ------------------------------------------------------------------------------------------- building

def budgetlm_config(args) -> ModelConfig:
    cfg = ModelConfig(vocab_size=args.vocab_size, d_model=args.d_model, n_layers=args.n_layers,
                      n_heads=args.n_heads, d_ff=args.d_ff, max_seq_len=args.seq_len, dropout=args.dropout,
                      **ARCHS[args.arch])
    cfg.validate()
    return cfg


def peer_model(args) -> BertForMaskedLM:
    # BertConfig defaults: gelu, type_vocab_size 2, eps 1e-12; dropout from --dropout (0.1 = BERT's)
    return BertForMaskedLM(BertConfig(
        vocab_size=args.vocab_size, hidden_size=args.d_model, num_hidden_layers=args.n_layers,
        num_attention_heads=args.n_heads, intermediate_size=args.d_ff, max_position_embeddings=args.seq_len,
        hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout,
    ))


def make_batch(batch_size: int, seq_len: int, vocab_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] random ids [SEP], no padding: ids (B, T) long, special (B, T) bool."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(N_SPECIAL, vocab_size, (batch_size, seq_len), generator=gen)  # (B, T)
    ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
    return ids, ids < N_SPECIAL


# ------------------------------------------------------------------------------------------- main

def main(argv=None) -> dict:
    args = parse_args(argv)
    tuned = False if args.no_tune_allocator else tune_allocator()  # process-wide: applies to both models
    if args.threads:
        torch.set_num_threads(args.threads)
    info = system_info(allocator_tuned=tuned)
    info["loadavg_start"] = os.getloadavg()
    B, T, V = args.batch_size, args.seq_len, args.vocab_size
    tokens_per_step = B * T

    peak_dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32  # MFU against the arithmetic in use
    peak_start = matmul_peak_gflops(dtype=peak_dtype)
    ids, special = make_batch(B, T, V, args.seed)  # (B, T), (B, T)
    # masked positions per step: round(0.15 x (T - 2)) per row, the same every step
    _, labels = mask_tokens(ids, special, torch.Generator().manual_seed(0), ObjectiveConfig(), V, MASK_ID, N_SPECIAL)
    n_masked = int((labels != IGNORE_INDEX).sum())

    ours_cfg = budgetlm_config(args)
    peer_cfg = budgetlm_config(argparse.Namespace(**{**vars(args), "arch": "bert"}))  # for FLOP counting only
    torch.manual_seed(args.seed)
    peer = peer_model(args)
    torch.manual_seed(args.seed)
    ours = build_mlm_model(ours_cfg)
    head_loss = None
    if args.compile:
        peer.compile()
        compile_blocks(ours, cpu_clock=False)
        head_loss = compile_fn(vocabulary_loss, cpu_clock=False)

    def in_precision(loss_fn):
        def run(x, y):
            with precision.autocast(args.precision):
                return loss_fn(x, y)
        return run

    contenders = [
        Contender("BertForMaskedLM", peer, in_precision(lambda x, y: peer(input_ids=x, labels=y).loss),
                  train_flops_per_step(peer_cfg, B, T, n_predicted=B * T)),
        Contender(f"budgetlm ({args.arch})", ours, in_precision(lambda x, y: mlm_loss(ours, x, y, head_loss=head_loss)[0]),
                  train_flops_per_step(ours_cfg, B, T, n_predicted=n_masked)),
    ]
    peer_c, ours_c = contenders
    print(machine_line(), flush=True)
    print(f"config: {args.n_layers} layers, d_model {args.d_model}, {args.n_heads} heads, d_ff {args.d_ff}, "
          f"vocab {V}, batch {B} x {T}, budgetlm arch {args.arch}, {n_masked} masked positions/step; "
          f"{info['torch_threads']} threads; {args.precision}{', compiled' if args.compile else ''}; allocator tuned: {tuned}; "
          f"peer attention: {peer.config._attn_implementation}", flush=True)

    for c in contenders:
        c.run(args.warmup, ids, special, args.seed, V, record=False)
    n_rounds = math.ceil(args.steps / args.round_steps)
    round_ratios = []  # (budgetlm tokens/s) / (peer tokens/s) within each round
    for r in range(n_rounds):
        k = min(args.round_steps, args.steps - r * args.round_steps)
        order = contenders if r % 2 == 0 else contenders[::-1]  # alternate who goes first
        took = {c.name: c.run(k, ids, special, args.seed, V, record=True) for c in order}
        round_ratios.append(took[peer_c.name] / took[ours_c.name])
        print(f"  round {r + 1}/{n_rounds}: " + ", ".join(f"{n} {t / k:.3f} s/step" for n, t in took.items()),
              flush=True)
    peak_end = matmul_peak_gflops(dtype=peak_dtype)
    peak = max(peak_start, peak_end)  # the higher peak gives the lower (conservative) MFU
    info["loadavg_end"] = os.getloadavg()
    info["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    p, o = peer_c.summary(tokens_per_step, peak), ours_c.summary(tokens_per_step, peak)
    ratio = o["tokens_per_s"] / p["tokens_per_s"]
    # budgetlm's achieved FLOP rate spent on the peer's per-token FLOPs: separates "faster kernels" from
    # "less work" (sparse prediction); its ratio to the peer's tokens/s equals MFU(budgetlm) / MFU(peer)
    peer_equivalent = o["tokens_per_s"] * ours_c.flops_per_step / peer_c.flops_per_step

    rows = [
        ("parameters", "{:,}", "parameters"),
        ("s/step (median)", "{:.3f}", "s_per_step_median"),
        ("s/step (min)", "{:.3f}", "s_per_step_min"),
        ("s/step (max)", "{:.3f}", "s_per_step_max"),
        ("tokens/s", "{:,.0f}", "tokens_per_s"),
        ("model GFLOP/step (analytic)", "{:.1f}", "model_gflop_per_step"),
        ("achieved GFLOP/s", "{:.1f}", "achieved_gflops"),
        (f"MFU (peak {peak:.1f} GFLOP/s)", "{:.1%}", "mfu"),
        ("CPU s/step (user+sys)", "{:.3f}", "cpu_s_per_step"),
        ("kernel share of CPU time", "{:.1%}", "kernel_share_of_cpu"),
        ("minor page faults/step", "{:,.0f}", "minor_faults_per_step_median"),
    ]
    w0, w = 30, 24
    print()
    print(f"{'':{w0}}{p['name']:>{w}}{o['name']:>{w}}")
    for label, fmt, key in rows:
        print(f"{label:{w0}}{fmt.format(p[key]):>{w}}{fmt.format(o[key]):>{w}}")
    print(f"{'peer-equivalent tokens/s':{w0}}{'':>{w}}{peer_equivalent:>{w},.0f}")
    print()
    print(f"matmul peak: {peak_start:.1f} GFLOP/s at start, {peak_end:.1f} at end; "
          f"load average {info['loadavg_start'][0]:.2f} at start, {info['loadavg_end'][0]:.2f} at end")
    print(f"per-round ratio: min {min(round_ratios):.2f}, median {statistics.median(round_ratios):.2f}, "
          f"max {max(round_ratios):.2f}; peer-equivalent ratio {peer_equivalent / p['tokens_per_s']:.2f}")
    print(f"budgetlm/HF tokens/s ratio: {ratio:.2f} (target >= 2.0)")

    result = {
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "budgetlm_model_config": vars(ours_cfg),
        "system": info,
        "masked_positions_per_step": n_masked,
        "tokens_per_step": tokens_per_step,
        "matmul_peak_gflops": {"start": peak_start, "end": peak_end, "used": peak},
        "peer": p,
        "budgetlm": o,
        "ratio_tokens_per_s": ratio,
        "round_ratios": round_ratios,
        "budgetlm_peer_equivalent_tokens_per_s": peer_equivalent,
        "per_step": {c.name: {"seconds": c.seconds, "minor_faults": c.faults, "user_s": c.user_s,
                              "sys_s": c.sys_s} for c in contenders},
    }
    if args.json:
        write_json(Path(args.json), result)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
