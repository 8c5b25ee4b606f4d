"""Equal-budget comparison of masking strategies (issue 4): random tokens, whole words, PMI n-grams, SpanBERT spans.

For every seed and strategy, through the CLI (so the commands are what a user types):
  1. budgetlm tokenizer  (once: WordPiece 8k on the training text)
  2. budgetlm pmi-vocab  (once: PMI n-gram vocabulary of the same text)
  3. budgetlm pretrain --config masking-pretrain objective.masking=M train.seed=S
  4. budgetlm finetune --config masking-finetune --model <3> train.seed=S      (SST-2)
Every arm gets the same number of optimizer steps, batch, data, model and seeds (a step budget, not wall
clock, so contention on the shared machine changes nothing but the duration). The MLM loss every arm is
scored on is the same: WikiText-2 valid, first 256 blocks, 15% random-token masking drawn from a fixed seed
(objectives/mlm_eval.py mlm_eval), whatever masking the model was trained with. `--half` adds PMI runs with half the
pre-training steps, to test the paper's "same quality in half the time" claim at this scale.

Prints a markdown table of mean +- std over the seeds and writes it (and all per-run figures) to
<out>/summary.md and <out>/summary.json. Runs whose results.json exists are reused, so an interrupted
experiment continues where it stopped.

    python bench/masking_comparison.py --out runs/masking-comparison [--jobs 4] [--half]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from budgetlm.config import preset_path
from budgetlm.data.root import data_root, english_pretraining_files
from common import budgetlm_cmd, format_mean_std, machine_line, mean_std, read_results, run

STRATEGIES = ["random", "wwm", "pmi", "spanbert"]
STEPS = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kK]?)\s*steps?\s*$")  # a step budget as train.budget reads it


def run_logged(cmd: list[str], log: Path) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] $ " + " ".join(cmd), flush=True)
    run(cmd, log)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/masking-comparison")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    ap.add_argument("--half", action="store_true", help="also pre-train PMI with half the steps (same schedule shape)")
    ap.add_argument("--pretrain-budget", help="override the masking-pretrain preset's step budget (e.g. 300steps)")
    ap.add_argument("--finetune-budget", help="override the masking-finetune preset's step budget")
    ap.add_argument("--jobs", type=int, default=1, help="arms run at once (each is one single-threaded process)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pre_cfg, ft_cfg = str(preset_path("masking-pretrain")), str(preset_path("masking-finetune"))
    train_files = [str(p) for p in english_pretraining_files()] + [str(data_root() / "sst2" / "train.tsv")]
    budget = str(args.pretrain_budget or yaml.safe_load(Path(pre_cfg).read_text())["train"]["budget"])
    steps = STEPS.match(budget)
    if not steps:
        sys.exit("error: the comparison needs a step budget (e.g. 300steps), not wall clock or tokens")
    half_budget = f"{int(float(steps.group(1)) * (1000 if steps.group(2) else 1)) // 2}steps"

    tok = out / "tokenizer"
    if not (tok / "tokenizer.json").exists():
        run_logged(budgetlm_cmd("tokenizer", "--kind", "wordpiece", "--vocab-size", "8192", "--out", str(tok), *train_files),
                   out / "tokenizer.log")
    vocab = out / "pmi-vocab.txt"
    if not vocab.exists():
        run_logged(budgetlm_cmd("pmi-vocab", "--out", str(vocab), *train_files), out / "pmi-vocab.log")

    arms = [(m, budget) for m in args.strategies] + ([("pmi", half_budget)] if args.half else [])

    def run_arm(seed: int, masking: str, b: str) -> None:
        """Pre-train then fine-tune one (strategy, budget, seed); finished steps are skipped."""
        name = masking if b == budget else f"{masking}-{b}"
        pre, ft = out / f"pretrain-{name}-seed{seed}", out / f"finetune-{name}-seed{seed}"
        if not (pre / "results.json").exists():
            shutil.rmtree(pre, ignore_errors=True)  # a run killed before its report restarts from scratch
            cmd = budgetlm_cmd("pretrain", "--config", pre_cfg, "--tokenizer", str(tok), "--train", *train_files,
                               "--budget", b, "--out", str(pre), f"objective.masking={masking}", f"train.seed={seed}")
            if masking == "pmi":
                cmd.append(f"objective.pmi_vocab={vocab}")
            run_logged(cmd, out / f"{pre.name}.log")
        if not (ft / "results.json").exists():
            shutil.rmtree(ft, ignore_errors=True)
            cmd = budgetlm_cmd("finetune", "--config", ft_cfg, "--model", str(pre), "--out", str(ft), f"train.seed={seed}")
            if args.finetune_budget:
                cmd += ["--budget", args.finetune_budget]
            run_logged(cmd, out / f"{ft.name}.log")

    # seeds outermost: a cut-short experiment still has whole seeds for every arm. Arms are independent
    # single-threaded processes, so --jobs N runs N at once (each still gets the same step budget).
    jobs = [(seed, m, b) for seed in args.seeds for m, b in arms]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(run_arm, *job) for job in jobs]:
            future.result()

    rows: dict[str, list[dict]] = {}
    for seed, masking, b in jobs:
        name = masking if b == budget else f"{masking}-{b}"
        p = read_results(out / f"pretrain-{name}-seed{seed}")
        f = read_results(out / f"finetune-{name}-seed{seed}")
        rows.setdefault(name, []).append({
            "seed": seed, "mlm_loss": p["mlm_loss"], "mlm_accuracy": p["mlm_accuracy"], "pretrain_steps": p["steps"],
            "pretrain_seconds": p["train_seconds"], "sst2_accuracy": f["accuracy"], "finetune_seconds": f["train_seconds"]})
    write_summary(out, rows, budget, args)


def write_summary(out: Path, rows: dict[str, list[dict]], budget: str, args) -> None:
    lines = ["| masking | pre-training steps | seeds | SST-2 dev accuracy | WikiText-2 MLM loss (random 15%) | MLM accuracy | pre-train s/run |",
             "|---|---|---|---|---|---|---|"]
    summary = {}
    for name, rs in rows.items():
        acc, loss, macc = mean_std([r["sst2_accuracy"] for r in rs]), mean_std([r["mlm_loss"] for r in rs]), mean_std([r["mlm_accuracy"] for r in rs])
        secs = statistics.mean(r["pretrain_seconds"] for r in rs)
        summary[name] = {"runs": rs, "sst2_accuracy": acc, "mlm_loss": loss, "mlm_accuracy": macc}
        lines.append(f"| {name} | {rs[0]['pretrain_steps']} | {len(rs)} | {format_mean_std(*acc, scale=100)} | "
                     f"{format_mean_std(*loss, digits=3)} | {format_mean_std(*macc, scale=100)} | {secs:.0f} |")
    table = "\n".join(lines)
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps({"budget": budget, "seeds": args.seeds, "arms": summary,
                                                  "loadavg_at_end": os.getloadavg()}, indent=2))
    print(machine_line(1), flush=True)
    print(table, flush=True)


if __name__ == "__main__":
    main()
