"""Training throughput of 2 DDP ranks (torchrun, gloo, 1 thread each) against 1 process (1 and 2 threads) at the
same global batch, measured interleaved (A, B, C, A, B, C, ...) so that machine load hits all alike.

    python bench/ddp_throughput.py --rounds 2 --steps 30 --out /tmp/budgetlm-ddp

Throughput is the run's own tokens_per_s (training tokens / training seconds: process start-up, tokenizing and
evaluation excluded). Prints one JSON line per run, then the median ratios and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
from pathlib import Path

from budgetlm.data.root import wikitext2
from common import budgetlm_cmd, cli_env, machine_line, read_results, run
MODEL = ["model.d_model=128", "model.n_layers=2", "model.n_heads=2", "model.d_ff=512", "model.max_seq_len=128",
         "model.dropout=0", "train.eval_every=0", "train.log_every=5", "train.checkpoint_every=1000steps"]
SETUPS = {  # name -> (ranks, threads per rank, per-rank batch); global batch 16 throughout
    "1 rank x 1 thread": (1, 1, 16),
    "2 ranks x 1 thread": (2, 1, 8),
    "1 rank x 2 threads": (1, 2, 16),
}


def run_setup(name: str, args, text: Path, tok: Path, out: Path, env: dict) -> dict:
    ranks, threads, batch = SETUPS[name]
    cli = ["pretrain", "--tokenizer", str(tok), "--train", str(text), "--valid", str(text), "--budget",
           f"{args.steps}steps", "--out", str(out), *MODEL, f"train.batch_size={batch}", f"train.threads={threads}"]
    load = os.getloadavg()
    run(budgetlm_cmd(*cli, ranks=ranks), env={**env, "OMP_NUM_THREADS": str(threads)}, capture=True)
    results = read_results(out)
    return {"setup": name, "tokens_per_s": results["tokens_per_s"], "steps": results["steps"],
            "load_avg_1m": round(load[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("/tmp/budgetlm-ddp"))
    args = ap.parse_args()
    print(json.dumps({"machine": machine_line("per setup")}), flush=True)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    env = cli_env(BUDGETLM_CACHE=str(args.out / "cache"))
    text = wikitext2("valid")
    run(budgetlm_cmd("tokenizer", "--vocab-size", "8192", "--out", str(args.out / "tok"), str(text)), env=env, capture=True)
    by_setup: dict[str, list[float]] = {n: [] for n in SETUPS}
    for r in range(args.rounds):
        for name in SETUPS:
            res = run_setup(name, args, text, args.out / "tok", args.out / f"{r}-{name.replace(' ', '')}", env)
            by_setup[name].append(res["tokens_per_s"])
            print(json.dumps({"round": r, **res}), flush=True)
    base = by_setup["1 rank x 1 thread"]
    summary = {n: round(statistics.median(v / b for v, b in zip(vals, base)), 2) for n, vals in by_setup.items()}
    print(json.dumps({"median_ratio_vs_1_rank_1_thread": summary, "load_avg": [round(x, 1) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
