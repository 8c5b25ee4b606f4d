"""Downstream figures for docs/results.md: MRPC, WikiANN-en, STS-B (and SST-2) from a model (vs --scratch), and a
multi-task run vs one run per task at the same total budget (CPU seconds: train.clock=cpu in the presets).

Each run is `budgetlm finetune` in a child process, so its CPU time is measured exactly (the machine is
shared: wall time depends on the neighbours, CPU time much less). Finished runs (results.json present) are
reused, so the script can be re-run to add seeds. Usage:

    BUDGETLM_DATA=/work/shared/data python bench/tasks_quality.py \
        --model runs/sst2-quality-v3/pretrain --out runs/tasks-v3 \
        --runs mrpc:pretrained:0,wikiann:pretrained:0,stsb:pretrained:0,multitask:pretrained:0
    python bench/tasks_quality.py --out runs/tasks-v3 --summary bench/results/tasks-quality-v3.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from common import REPO, budgetlm_cmd, format_mean_std, machine_line, mean_std, read_results, run
CONFIGS = {
    "mrpc": "mrpc-finetune",
    "wikiann": "wikiann-finetune",
    "multitask": "multitask-mrpc-wikiann-finetune",
    "stsb": "stsb-embedding-finetune",
    "stsb-distill": "stsb-embedding-distill-finetune",
    "sst2": "sst2-finetune",
}
# (results key, what it is) per reported figure
FIGURES = {
    "mrpc": [("test_accuracy", "MRPC test accuracy"), ("test_f1", "MRPC test F1")],
    "wikiann": [("test_f1", "WikiANN-en test entity F1")],
    "multitask": [("mrpc/test_accuracy", "MRPC test accuracy"), ("mrpc/test_f1", "MRPC test F1"),
                  ("wikiann/test_f1", "WikiANN-en test entity F1")],
    "stsb": [("test_spearman", "STS-B test Spearman x100")],
    "stsb-distill": [("test_spearman", "STS-B test Spearman x100")],
    "sst2": [("accuracy", "SST-2 dev accuracy")],
}
PERCENT = {"test_spearman"}  # figures already stored x100 (the others are fractions)


def run_one(model: str, out: Path, task: str, arm: str, seed: int, extra: list[str]) -> dict:
    run_dir = out / f"{task}-{arm}-seed{seed}"
    if (run_dir / "results.json").exists() and (run_dir / "bench.json").exists():
        return json.loads((run_dir / "bench.json").read_text())
    cmd = budgetlm_cmd("finetune", "--model", model, "--config", CONFIGS[task], "--out", str(run_dir),
                       f"train.seed={seed}", *extra) + (["--scratch"] if arm == "scratch" else [])
    proc = run(cmd, out / f"{task}-{arm}-seed{seed}.log", cwd=REPO)
    results = read_results(run_dir)
    record = {
        "task": task, "arm": arm, "seed": seed, "command": " ".join(cmd[1:]), "wall_s": round(proc["wall_s"], 1),
        "cpu_s": round(proc["cpu_s"], 1), "train_seconds": results["train_seconds"], "steps": results["steps"],
        "loadavg_before": [round(x, 2) for x in proc["loadavg_before"]],
        "loadavg_after": [round(x, 2) for x in proc["loadavg_after"]],
        "results": {k: v for k, v in results.items() if isinstance(v, (int, float))},
    }
    (run_dir / "bench.json").write_text(json.dumps(record, indent=2))
    print(f"{task} {arm} seed {seed}: " + ", ".join(f"{name} {record['results'].get(k, float('nan')):.4f}" for k, name in FIGURES[task])
          + f" ({record['cpu_s']:.0f} CPU-s, {record['wall_s']:.0f} s wall, load {record['loadavg_before'][0]})", flush=True)
    return record


def summarize(out: Path) -> dict:
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*/bench.json"))]
    table = {}
    for r in records:
        for key, name in FIGURES[r["task"]]:
            row = table.setdefault(f"{r['task']} {r['arm']}: {name}", {"values": [], "cpu_s": [], "steps": [], "loadavg": []})
            row["values"].append(r["results"][key] / (100 if key in PERCENT else 1))
            row["cpu_s"].append(r["cpu_s"])
            row["steps"].append(r["steps"])
            row["loadavg"].append(r["loadavg_before"][0])
    for row in table.values():
        row["mean"], row["std"] = mean_std(row["values"])
        row["n"] = len(row["values"])
    return {"rows": table, "runs": records}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="runs/sst2-quality-v3/pretrain", help="run or model dir to fine-tune (default: the SST-2 quality pre-training, bench/sst2_quality.py)")
    ap.add_argument("--out", default="runs/tasks-quality")
    ap.add_argument("--runs", default="", help="comma-separated task:arm:seed (task: " + ", ".join(CONFIGS) + "; arm: pretrained, scratch)")
    ap.add_argument("--summary", help="write the summary of every finished run in --out to this JSON file")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for every run")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(machine_line("the presets' train.threads"), flush=True)
    for item in filter(None, args.runs.split(",")):
        task, arm, seed = item.split(":")
        run_one(args.model, out, task, arm, int(seed), args.overrides)
    if args.summary:
        summary = summarize(out)
        Path(args.summary).write_text(json.dumps(summary, indent=2))
        for name, row in summary["rows"].items():
            print(f"{name:<55} {format_mean_std(row['mean'], row['std'], scale=100)} (n={row['n']}, "
                  f"{statistics.mean(row['cpu_s']):.0f} CPU-s, {statistics.mean(row['steps']):.0f} steps)")


if __name__ == "__main__":
    main()
