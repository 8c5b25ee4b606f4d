"""Does pre-training pay for itself on two CPU cores? SST-2 dev accuracy, pre-trained vs from scratch.

Runs (each through the CLI, so the commands are exactly what a user types):
  1. budgetlm pretrain --config PRETRAIN_CONFIG  (shared English text + the unlabelled SST-2 sentences)
  2. budgetlm finetune --config FINETUNE_CONFIG --model <pretrain run>             (seeds 0, 1, 2)
  3. budgetlm finetune --config FINETUNE_CONFIG --model <pretrain run> --scratch   (seeds 0, 1, 2)
and prints mean +- std of SST-2 dev accuracy for both arms. Steps whose results.json exists are reused.

With --paired (the default), the two arms of one seed run at the same time, one core and one thread each,
so both see the same machine conditions under the same wall-clock budget.

    python bench/sst2_quality.py --out runs/sst2-quality --finetune-set train.clock=cpu --arm-set scratch:train.lr=1e-3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from budgetlm.data.root import data_root, english_pretraining_files
from common import budgetlm_cmd, format_mean_std, launch, machine_line, mean_std, read_results, wait_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/sst2-quality")
    ap.add_argument("--config", default="sst2-budget-pretrain", help="pre-training preset or YAML file")
    ap.add_argument("--finetune-config", default="sst2-finetune")
    ap.add_argument("--sst2-repeats", type=int, default=6,
                    help="list the unlabelled SST-2 training sentences this many times beside the English text")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pretrain-budget", default=None, help="override the config's budget (e.g. for a smoke run)")
    ap.add_argument("--finetune-budget", default=None)
    ap.add_argument("--sequential", action="store_true", help="run fine-tunes one at a time with all threads")
    ap.add_argument("--tokenizer", help="reuse this tokenizer instead of training one")
    ap.add_argument("--pretrained", help="fine-tune this existing pre-training run instead of running step 1")
    ap.add_argument("--finetune-set", action="append", default=[], metavar="key=value",
                    help="an override for both fine-tuning arms (repeatable), e.g. data.group_by_length=true")
    ap.add_argument("--arm-set", action="append", default=[], metavar="ARM:key=value",
                    help="an override for one arm only (pretrained or scratch; repeatable), e.g. pretrained:train.lr=3e-4 "
                         "when each arm runs at its own best learning rate")
    ap.add_argument("pretrain_overrides", nargs="*", metavar="key=value")
    args = ap.parse_args()
    bad = [item for item in args.arm_set if item.partition(":")[0] not in ("pretrained", "scratch")]
    if bad:
        ap.error(f"--arm-set takes pretrained:key=value or scratch:key=value, got {', '.join(bad)}")
    out = Path(args.out)
    sst2 = str(data_root() / "sst2" / "train.tsv")
    train_files = [str(p) for p in english_pretraining_files()] + [sst2] * args.sst2_repeats

    pre = Path(args.pretrained) if args.pretrained else out / "pretrain"
    if not (pre / "results.json").exists():
        cmd = budgetlm_cmd("pretrain", "--config", args.config, "--train", *train_files, "--out", str(pre))
        if args.pretrain_budget:
            cmd += ["--budget", args.pretrain_budget]
        if args.tokenizer:
            cmd += ["--tokenizer", args.tokenizer]
        cmd += ["--resume"] if (pre / "checkpoints").exists() else []
        wait_all([launch(cmd + args.pretrain_overrides, out / "pretrain.log")])
    table = {"pretrain": read_results(pre), "pretrain_run": str(pre), "command": " ".join(sys.argv)}

    def finetune_cmd(arm: str, seed: int) -> tuple[list[str], Path]:
        d = out / f"finetune-{arm}-seed{seed}"
        cmd = budgetlm_cmd("finetune", "--config", args.finetune_config, "--model", str(pre), "--out", str(d))
        cmd += ["--scratch"] if arm == "scratch" else []
        if args.finetune_budget:
            cmd += ["--budget", args.finetune_budget]
        cmd += [f"train.seed={seed}"] + ([] if args.sequential else ["train.threads=1"]) + args.finetune_set
        cmd += [kv for a, _, kv in (item.partition(":") for item in args.arm_set) if a == arm]
        return cmd, d

    for seed in args.seeds:
        todo = [finetune_cmd(arm, seed) for arm in ("pretrained", "scratch")]
        todo = [(c, d) for c, d in todo if not (d / "results.json").exists()]
        if args.sequential:
            for c, d in todo:
                wait_all([launch(c, d.with_suffix(".log"))])
        else:
            wait_all([launch(c, d.with_suffix(".log")) for c, d in todo])

    for arm in ("pretrained", "scratch"):
        results = [read_results(out / f"finetune-{arm}-seed{s}") for s in args.seeds]
        accs = [r["accuracy"] for r in results]
        mean, std = mean_std(accs)
        table[arm] = {"accuracies": accs, "steps": [r["steps"] for r in results],
                      "kept_steps": [r.get("kept_step", r["steps"]) for r in results], "mean": mean, "std": std}
    gain = 100 * (table["pretrained"]["mean"] - table["scratch"]["mean"])
    table["gain_points"] = gain
    table["load_average_at_end"] = os.getloadavg()
    (out / "summary.json").write_text(json.dumps(table, indent=2))
    p = table["pretrain"]
    figures = ", ".join(f"{k} {p[k]:.3f}" for k in ("mlm_loss", "mlm_accuracy", "pseudo_perplexity",  # masked LM
                                                      "generator_mlm_accuracy", "rtd_accuracy") if k in p)  # ELECTRA
    print("\n" + machine_line("default" if args.sequential else 1))
    print(f"pre-training: {p['steps']} steps, {p['train_tokens']:,} tokens in {p['train_seconds']:.0f}s; {figures}")
    for arm in ("pretrained", "scratch"):
        t = table[arm]
        print(f"SST-2 dev accuracy, {arm:<10}: {format_mean_std(t['mean'], t['std'], scale=100, sep='+-')}  "
              f"(seeds: {', '.join(f'{100 * a:.2f}' for a in t['accuracies'])}; steps {t['steps']}, kept {t['kept_steps']})")
    print(f"gain from pre-training: {gain:+.2f} points (target: >= +1.5, and pre-trained >= 83%)")


if __name__ == "__main__":
    main()
