"""Peak resident memory (max RSS, from /usr/bin/time -v) of (1) tokenizer training and (2) the token-cache
build on the whole shared English pre-training text, and (3) a pre-training run of the 20-minute recipe
(the preset sst2-budget-pretrain) cut to --budget.

    python bench/peak_memory.py --budget 3m --out /tmp/budgetlm-peak

Every step runs in its own process with a fresh cache directory, so nothing is reused between them.
Prints one JSON line per step (max_rss_mb, wall seconds, load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

from budgetlm.data.root import english_pretraining_files
from common import cli_env, machine_line, read_results, run


def measured(argv: list[str], env: dict) -> dict:
    proc = run(["/usr/bin/time", "-v", sys.executable, *argv], env=env, capture=True)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc["stderr"]).group(1))
    return {"max_rss_mb": round(rss_kb / 1024, 1), "wall_s": round(proc["wall_s"], 1),
            "load_before": [round(x, 1) for x in proc["loadavg_before"]],
            "load_after": [round(x, 1) for x in proc["loadavg_after"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", default="3m", help="pre-training budget (the recipe's is 20m)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("/tmp/budgetlm-peak"))
    args = ap.parse_args()
    print(json.dumps({"machine": machine_line(args.threads)}), flush=True)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    env = cli_env(threads=args.threads, BUDGETLM_CACHE=str(args.out / "cache"))
    files = [str(f) for f in english_pretraining_files()]
    size_mb = sum(os.path.getsize(f) for f in files) / 1e6

    tok = measured(["-m", "budgetlm", "tokenizer", "--vocab-size", "16384", "--out", str(args.out / "tok"), *files], env)
    print(json.dumps({"step": "tokenizer (WordPiece 16k)", "input_mb": round(size_mb, 1), **tok}), flush=True)

    build = ("from budgetlm.data.cache import build_or_load; import sys; "
             "c = build_or_load(sys.argv[2:], tokenizer=sys.argv[1]); print(c.n_tokens)")
    cache = measured(["-c", build, str(args.out / "tok" / "tokenizer.json"), *files], env)
    print(json.dumps({"step": "token cache build", "input_mb": round(size_mb, 1), **cache}), flush=True)

    pre = measured(["-m", "budgetlm", "pretrain", "--config", "sst2-budget-pretrain",
                    "--tokenizer", str(args.out / "tok"), "--train", *files, "--budget", args.budget,
                    "--out", str(args.out / "pretrain"), f"train.threads={args.threads}", "train.eval_every=0"], env)
    results = read_results(args.out / "pretrain")
    print(json.dumps({"step": f"pretrain {args.budget} (preset sst2-budget-pretrain)", **pre,
                      "steps": results["steps"], "tokens_per_s": results["tokens_per_s"]}), flush=True)


if __name__ == "__main__":
    main()
