"""Short budgets are not wasted (issue #23): `pretrain` with defaults for 90 s, then `finetune` with defaults for
2 minutes on a binary sentence task the project was never tuned on, against TF-IDF + logistic regression on the
same split (the peer a user would try first) and chance.

The task is Pang & Lee's sentence polarity (rt-polarity, 5,331 + 5,331 Rotten Tomatoes snippets, no official
split): shuffled with a fixed seed and cut 80/10/10 into train/dev/test TSVs in --work (never in the repository).
The verdict: "learns" when the fine-tuned model's test accuracy is at least 10 points above chance, or the run
said it learnt nothing (results.json `learned: false`, which the issue also accepts); otherwise it fails.

    python bench/short_budget.py --work runs/short-budget --json bench/results/short-budget.json
"""

from __future__ import annotations

import argparse
import io
import os
import random
import zipfile
from pathlib import Path

from common import budgetlm_cmd, machine_line, read_results, run, system_info, write_json

CHANCE = 0.5


def data_root() -> Path:
    return Path(os.environ.get("BUDGETLM_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def polarity_splits(seed: int = 0) -> dict[str, list[tuple[str, int]]]:
    """(text, label) rows of rt-polarity, shuffled with `seed`, as train/dev/test (80/10/10)."""
    rows = []
    with zipfile.ZipFile(data_root() / "sentence_polarity" / "sentence_polarity.zip") as z:
        for name, label in (("rt-polarity.neg", 0), ("rt-polarity.pos", 1)):
            text = io.TextIOWrapper(z.open(f"sentence_polarity/{name}"), encoding="latin-1").read()
            rows += [(line.strip().replace("\t", " "), label) for line in text.splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    n = len(rows) // 10
    return {"train": rows[2 * n:], "dev": rows[:n], "test": rows[n:2 * n]}


def write_tsvs(splits: dict, out: Path) -> dict[str, Path]:
    paths = {}
    for split, rows in splits.items():
        paths[split] = out / f"polarity-{split}.tsv"
        paths[split].write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return paths


def tfidf_baseline(splits: dict) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    x = vec.fit_transform([t for t, _ in splits["train"]])
    clf = LogisticRegression(max_iter=1000).fit(x, [y for _, y in splits["train"]])
    return float(clf.score(vec.transform([t for t, _ in splits["test"]]), [y for _, y in splits["test"]]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/short-budget"))
    ap.add_argument("--pretrain-budget", default="90s")
    ap.add_argument("--finetune-budget", default="2m")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="overrides for both commands, e.g. train.clock=cpu train.threads=1 on a shared machine")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    splits = polarity_splits()
    files = write_tsvs(splits, args.work)
    baseline = tfidf_baseline(splits)
    print(f"TF-IDF + logistic regression: test accuracy {baseline:.4f}", flush=True)
    pt, ft = args.work / "pretrain", args.work / "finetune"
    if not (pt / "results.json").exists():
        run(budgetlm_cmd("pretrain", "--budget", args.pretrain_budget, "--out", str(pt), *args.set),
            args.work / "pretrain.log")
    if not (ft / "results.json").exists():
        run(budgetlm_cmd("finetune", "--model", str(pt), "--train", str(files["train"]), "--valid", str(files["dev"]),
                         "--test", str(files["test"]), "--budget", args.finetune_budget, "--out", str(ft), *args.set),
            args.work / "finetune.log")
    pre, res = read_results(pt), read_results(ft)
    acc, learned = float(res["test_accuracy"]), res.get("learned")
    verdict = "learns" if acc >= CHANCE + 0.10 else ("said it learnt nothing" if learned is False else "FAILS")
    print(f"pretrain {args.pretrain_budget}: {pre.get('steps')} steps; finetune {args.finetune_budget}: "
          f"{res.get('steps')} steps, test accuracy {acc:.4f} (chance {CHANCE}, TF-IDF {baseline:.4f}), "
          f"learned={learned}: {verdict}", flush=True)
    if args.json:
        write_json(args.json, {"system": system_info(), "overrides": args.set, "pretrain_budget": args.pretrain_budget,
                               "finetune_budget": args.finetune_budget, "pretrain_steps": pre.get("steps"),
                               "finetune_steps": res.get("steps"), "test_accuracy": acc, "learned": learned,
                               "tfidf_test_accuracy": baseline, "chance": CHANCE, "verdict": verdict})
    if verdict == "FAILS":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
