"""Your own data with defaults vs the built-in task with its preset (issue #23), same model, budget and seeds.

A user's file is not a built-in task: this script writes the data root's SST-2 and WikiANN as a user would have
them, then fine-tunes the same pre-trained model on them twice per seed:
  preset  `finetune --task T --config <T's preset>`              (how the project's published figures are made)
  own     `finetune --train F --valid F [--test F]`, defaults only (what a user types for a file of their own)
and prints both means, the gap and the verdict against the issue's target (SST-2 within 1 accuracy point,
WikiANN within 3 entity-F1 points).

The user files (in --work/data, never in the repository):
  sst2     text<TAB>label TSVs with a header, from train.tsv and dev.tsv (the built-in task evaluates on dev)
  wikiann  plain CoNLL: the `en:` prefix dropped and the IOB2 tags rewritten as IOB1 (B- only where an entity
           directly follows one of the same type), train/dev/test

    python bench/own_data.py --model runs/pt --tasks sst2,wikiann --seeds 3 --budget 10m \
        --work runs/own-data --json bench/results/own-data.json
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from common import budgetlm_cmd, format_mean_std, machine_line, mean_std, read_results, run, system_info, write_json

# task -> (preset, results key, how the figure is named, target gap in points)
TASKS = {
    "sst2": ("sst2-finetune", "accuracy", "dev accuracy", 1.0),
    "wikiann": ("wikiann-finetune", "test_f1", "test entity F1", 3.0),
}


def data_root() -> Path:
    return Path(os.environ.get("BUDGETLM_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def write_sst2(root: Path, out: Path) -> list[str]:
    files = []
    for split in ("train", "dev"):
        dst = out / f"sst2-{split}.tsv"
        with open(root / "sst2" / f"{split}.tsv", encoding="utf-8", newline="") as f, \
                open(dst, "w", encoding="utf-8", newline="") as g:
            rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            g.write("text\tlabel\n")
            g.writelines(f"{r['sentence'].strip()}\t{r['label']}\n" for r in rows)
        files.append(str(dst))
    return ["--train", files[0], "--valid", files[1]]


def iob2_to_iob1(tags: list[str]) -> list[str]:
    """B-X stays B-X only right after an X entity (IOB1's rule); every other B-X becomes I-X."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-") and not (i and tags[i - 1] != "O" and tags[i - 1][2:] == tag[2:]):
            tag = "I-" + tag[2:]
        out.append(tag)
    return out


def write_conll_iob1(src: Path, dst: Path) -> None:
    sentences, current = [], []
    for line in src.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        token, tag = line.rsplit("\t", 1) if "\t" in line else line.rsplit(" ", 1)
        current.append((token.removeprefix("en:"), tag))
    if current:
        sentences.append(current)
    with open(dst, "w", encoding="utf-8") as g:
        for sent in sentences:
            tags = iob2_to_iob1([t for _, t in sent])
            g.writelines(f"{tok} {tag}\n" for (tok, _), tag in zip(sent, tags))
            g.write("\n")


def write_wikiann(root: Path, out: Path) -> list[str]:
    args = []
    for split, flag in (("train", "--train"), ("dev", "--valid"), ("test", "--test")):
        dst = out / f"wikiann-{split}.conll"
        write_conll_iob1(root / "ner-wikiann-en" / split, dst)
        args += [flag, str(dst)]
    return args


WRITERS = {"sst2": write_sst2, "wikiann": write_wikiann}


def finetune(args, task: str, arm: str, seed: int, data_args: list[str]) -> float:
    preset, key, _, _ = TASKS[task]
    run_dir = args.work / f"{task}-{arm}-seed{seed}"
    if not (run_dir / "results.json").exists():
        how = ["--task", task, "--config", preset] if arm == "preset" else data_args
        cmd = budgetlm_cmd("finetune", "--model", str(args.model), *how, "--budget", args.budget,
                           "--out", str(run_dir), f"train.seed={seed}", *args.set)
        run(cmd, args.work / f"{task}-{arm}-seed{seed}.log")
    value = float(read_results(run_dir)[key]) * 100
    print(f"{task} {arm} seed {seed}: {value:.2f}", flush=True)
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="pre-trained run or model directory")
    ap.add_argument("--tasks", default="sst2,wikiann", help=f"comma-separated, from {', '.join(TASKS)}")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", default="10m", help="fine-tuning budget of every run")
    ap.add_argument("--work", type=Path, default=Path("runs/own-data"))
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="machine settings for every run of both arms, e.g. train.clock=cpu train.threads=1")
    args = ap.parse_args()
    (args.work / "data").mkdir(parents=True, exist_ok=True)
    print(machine_line())
    rows = {}
    for task in args.tasks.split(","):
        _, _, label, target = TASKS[task]
        data_args = WRITERS[task](data_root(), args.work / "data")
        arms = {"preset": [], "own": []}
        for seed in range(args.seeds):  # seed by seed, both arms: a stopped bench leaves pairs, not one arm
            for arm, values in arms.items():
                values.append(finetune(args, task, arm, seed, data_args))
        gap = mean_std(arms["preset"])[0] - mean_std(arms["own"])[0]
        rows[task] = {"metric": label, **arms, "gap": round(gap, 2), "target_gap": target, "met": gap <= target}
        print(f"{task} {label}: preset {format_mean_std(*mean_std(arms['preset']))}, "
              f"own file with defaults {format_mean_std(*mean_std(arms['own']))}; gap {gap:+.2f} "
              f"(target <= {target}): {'met' if gap <= target else 'NOT met'}", flush=True)
    if args.json:
        write_json(args.json, {"system": system_info(), "model": str(args.model), "budget": args.budget,
                               "overrides": args.set,
                               "seeds": args.seeds, "tasks": rows})


if __name__ == "__main__":
    main()
