"""Short pre-training runs of recipe variants, compared on masked-LM loss -- for choosing a recipe.

Each variant is `budgetlm pretrain --config BASE --budget B <overrides>`, run one after another (never in
parallel: budgets are wall-clock) on the same training files and tokenizer, so they share one token cache.
The table reports steps, tokens, tokens/s and the final masked-LM loss/accuracy on the --valid text.

    python bench/pretrain_sweep.py --budget 4m --out runs/sweep \
        --variant base= --variant bs16=train.batch_size=16 --variant lr2e-3=train.lr=2e-3
"""

from __future__ import annotations

import argparse
from pathlib import Path

from budgetlm.data.root import data_root, english_pretraining_files
from common import budgetlm_cmd, machine_line, read_results, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="sst2-budget-pretrain")
    ap.add_argument("--budget", default="4m")
    ap.add_argument("--out", default="runs/sweep")
    ap.add_argument("--tokenizer", help="reuse this tokenizer (default: each run trains the same one)")
    ap.add_argument("--valid", help="evaluation text (default: SST-2 dev sentences, the in-domain text)")
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=OVERRIDES",
                    help="a name and space-separated key=value overrides, e.g. 'bs16=train.batch_size=16'")
    args = ap.parse_args()
    sst2 = data_root() / "sst2"
    train = [str(p) for p in english_pretraining_files()] + [str(sst2 / "train.tsv")] * 2
    valid = args.valid or str(sst2 / "dev.tsv")
    rows = []
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        run_dir = Path(args.out) / name
        if not (run_dir / "results.json").exists():
            cmd = budgetlm_cmd("pretrain", "--config", args.config, "--budget", args.budget, "--train", *train,
                               "--valid", valid, "--out", str(run_dir), "train.eval_every=0", *overrides.split())
            if args.tokenizer:
                cmd += ["--tokenizer", args.tokenizer]
            run(cmd, echo=True)
        r = read_results(run_dir)
        rows.append((name, overrides, r))
    print("\n" + machine_line())
    print("| variant | overrides | steps | tokens | tokens/s | MLM loss | MLM acc | pseudo-ppl |")
    print("|---|---|---|---|---|---|---|---|")
    for name, overrides, r in rows:
        print(f"| {name} | `{overrides}` | {r['steps']} | {r['train_tokens']:,} | {r['tokens_per_s']:.0f} | "
              f"{r['mlm_loss']:.3f} | {r['mlm_accuracy']:.3f} | {r['pseudo_perplexity']:.0f} |")


if __name__ == "__main__":
    main()
