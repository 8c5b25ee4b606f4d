"""Does pre-training pay for itself on two CPU cores? SST-2 dev accuracy, pre-trained vs from scratch.

Runs (each through the CLI, so the commands are exactly what a user types):
  1. budgetlm pretrain --config configs/sst2-budget-pretrain.yaml  (20 minutes, shared English text + SST-2 sentences)
  2. budgetlm finetune --config configs/sst2-finetune.yaml --model <pretrain run>             (seeds 0, 1, 2)
  3. budgetlm finetune --config configs/sst2-finetune.yaml --model <pretrain run> --scratch   (seeds 0, 1, 2)
and prints mean +- std of SST-2 dev accuracy for both arms. Steps whose results.json exists are reused.

    python bench/sst2_quality.py --out runs/sst2-quality
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from budgetlm.data.root import data_root, english_pretraining_files


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/sst2-quality")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pretrain-budget", default=None, help="override the config's budget (e.g. for a smoke run)")
    ap.add_argument("--finetune-budget", default=None)
    args = ap.parse_args()
    out = Path(args.out)
    bl = [sys.executable, "-m", "budgetlm"]
    sst2 = data_root() / "sst2" / "train.tsv"
    train_files = [str(p) for p in english_pretraining_files()] + [str(sst2), str(sst2)]

    pre = out / "pretrain"
    if not (pre / "results.json").exists():
        cmd = bl + ["pretrain", "--config", "configs/sst2-budget-pretrain.yaml", "--train", *train_files, "--out", str(pre)]
        if args.pretrain_budget:
            cmd += ["--budget", args.pretrain_budget]
        run(cmd)
    table = {"pretrain": json.loads((pre / "results.json").read_text())}
    for arm in ("pretrained", "scratch"):
        accs = []
        for seed in args.seeds:
            d = out / f"finetune-{arm}-seed{seed}"
            if not (d / "results.json").exists():
                cmd = bl + ["finetune", "--config", "configs/sst2-finetune.yaml", "--model", str(pre), "--out", str(d),
                            f"train.seed={seed}"] + (["--scratch"] if arm == "scratch" else [])
                if args.finetune_budget:
                    cmd += ["--budget", args.finetune_budget]
                run(cmd)
            accs.append(json.loads((d / "results.json").read_text())["accuracy"])
        table[arm] = {"accuracies": accs, "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}
    gain = 100 * (table["pretrained"]["mean"] - table["scratch"]["mean"])
    table["gain_points"] = gain
    (out / "summary.json").write_text(json.dumps(table, indent=2))
    p = table["pretrain"]
    print(f"\npre-training: {p['steps']} steps, {p['train_tokens']:,} tokens in {p['train_seconds']:.0f}s; "
          f"WikiText-2 valid MLM acc {p['mlm_accuracy']:.3f}, pseudo-perplexity {p['pseudo_perplexity']:.1f}")
    for arm in ("pretrained", "scratch"):
        t = table[arm]
        print(f"SST-2 dev accuracy, {arm:<10}: {100 * t['mean']:.2f} +- {100 * t['std']:.2f}  "
              f"(seeds: {', '.join(f'{100 * a:.2f}' for a in t['accuracies'])})")
    print(f"gain from pre-training: {gain:+.2f} points (target: >= +1.5, and pre-trained >= 83%)")


if __name__ == "__main__":
    main()
