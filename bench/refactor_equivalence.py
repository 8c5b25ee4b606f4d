"""Refactor equivalence: fixed-seed runs give the same losses and results before and after a refactor (issue #22).

Drives only the `budgetlm` command line (`python -m budgetlm ...` in a subprocess, from the repository root with
it on PYTHONPATH), so it survives any internal renaming. Each run's per-step `loss` (and the other numbers of the
step records), its evaluation records in metrics.jsonl and every number in results.json are kept; time-dependent
figures (elapsed_s, tokens_per_s, train_seconds, ...) are left out.

    PYTHONPATH=. python bench/refactor_equivalence.py --record bench/results/refactor-equivalence-base.json
    PYTHONPATH=. python bench/refactor_equivalence.py --check bench/results/refactor-equivalence-base.json

--check reruns every run recorded in FILE and compares: a number differing by more than --tol (1e-6), or one
missing from the new run, is a mismatch (exit 1). Numbers the new run adds are listed but not failures.
Runs (one thread each, fixed seeds, small real data written into --work, the recorded tokenizer under --check;
~2.5 minutes on an idle machine):
  sst2-pretrain-fp32      preset sst2-budget-pretrain, 50 steps, train.compile=false train.precision=fp32
  sst2-pretrain-recipe    the same recipe as-is (compile: true, precision: auto); --runs to skip it
  sst2-finetune           head fine-tune of sst2-pretrain-fp32 on SST-2 (preset sst2-finetune), 40 steps
  stsb-embedding          embedding fine-tune of sst2-pretrain-fp32 on STS-B (preset stsb-embedding-finetune)
  t5-pretrain             a small encoder-decoder, preset t5-span-pretrain, 20 steps
  t5-text2text            SST-2 text-to-text fine-tune of t5-pretrain (preset sst2-text2text-finetune)
  gpt-char                preset gpt-char-shakespeare (decoder, tied embeddings), 30 steps
Needs the data root ($BUDGETLM_DATA): sst2, stsb, mrpc, wikitext-2-raw, tinyshakespeare.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOL = 1e-6
# numbers that depend on the clock or the machine's load, not on the arithmetic
TIMING = re.compile(r"(^|_)(elapsed|seconds|time|per_s|loadavg|throughput)|_s$")

# written into --work: small real data and a tokenizer, so the runs take seconds
PREP_TRAIN_LINES = 4000  # SST-2 training sentences
PREP_VALID_LINES = 300  # lines of WikiText-2 valid
PREP_VOCAB = 2000

COMMON = ["train.threads=1", "train.log_every=1"]
SMALL_T5 = ["model.d_model=64", "model.n_layers=2", "model.n_heads=2", "model.d_ff=128", "train.batch_size=16",
            "objective.sentinels=20"]

# name -> (runs it needs, command-line arguments after `python -m budgetlm`; {work} and {run} are filled in)
RUNS: dict[str, tuple[list[str], list[str]]] = {
    "sst2-pretrain-fp32": ([], [
        "pretrain", "--config", "sst2-budget-pretrain", "--budget", "50steps",
        "--tokenizer", "{work}/tokenizer", "--train", "{work}/train.txt", "--valid", "{work}/valid.txt",
        *COMMON, "train.eval_every=25", "train.compile=false", "train.precision=fp32"]),
    "sst2-pretrain-recipe": ([], [
        "pretrain", "--config", "sst2-budget-pretrain", "--budget", "50steps",
        "--tokenizer", "{work}/tokenizer", "--train", "{work}/train.txt", "--valid", "{work}/valid.txt",
        *COMMON, "train.eval_every=25"]),
    "sst2-finetune": (["sst2-pretrain-fp32"], [
        "finetune", "--model", "{run[sst2-pretrain-fp32]}", "--task", "sst2", "--config", "sst2-finetune",
        "--budget", "40steps", *COMMON, "train.eval_every=20", "data.max_eval_examples=200"]),
    "stsb-embedding": (["sst2-pretrain-fp32"], [
        "finetune", "--model", "{run[sst2-pretrain-fp32]}", "--task", "stsb",
        "--config", "stsb-embedding-finetune", "--budget", "30steps", *COMMON, "data.max_eval_examples=200"]),
    "t5-pretrain": ([], [
        "pretrain", "--config", "t5-span-pretrain", "--budget", "20steps",
        "--tokenizer", "{work}/tokenizer", "--train", "{work}/train.txt", "--valid", "{work}/valid.txt",
        *COMMON, *SMALL_T5]),
    "t5-text2text": (["t5-pretrain"], [
        "finetune", "--model", "{run[t5-pretrain]}", "--method", "text2text", "--task", "sst2",
        "--config", "sst2-text2text-finetune", "--budget", "20steps", *COMMON, "train.batch_size=16",
        "train.eval_every=10", "data.max_eval_examples=100"]),
    "gpt-char": ([], [
        "pretrain", "--config", "gpt-char-shakespeare", "--budget", "30steps", *COMMON,
        "train.eval_every=15"]),
}


def prepare(work: Path, data_root: Path, tokenizer_json: str | None) -> None:
    """Write the small training/validation texts and the tokenizer the pre-training runs share: the recorded one
    under --check (`budgetlm tokenizer` numbers tokens that tie in frequency differently from run to run, which
    would change every loss), else a new one trained with `budgetlm tokenizer`."""
    lines = (data_root / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:PREP_TRAIN_LINES + 1]
    (work / "train.txt").write_text("".join(line.split("\t")[0].strip() + "\n" for line in lines), encoding="utf-8")
    valid = (data_root / "wikitext-2-raw" / "wiki.valid.raw").read_text(encoding="utf-8").splitlines()[:PREP_VALID_LINES]
    (work / "valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
    shutil.rmtree(work / "tokenizer", ignore_errors=True)
    if tokenizer_json is not None:
        (work / "tokenizer").mkdir()
        (work / "tokenizer" / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        return
    budgetlm(["tokenizer", "--vocab-size", str(PREP_VOCAB), "--out", str(work / "tokenizer"), str(work / "train.txt")],
             work, work / "tokenizer.log")


def budgetlm(args: list[str], work: Path, log: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "BUDGETLM_CACHE": str(work / "cache")}  # a private token cache: every run tokenises afresh
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", "budgetlm", *args], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    if proc.returncode:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        sys.exit(f"budgetlm {' '.join(args)} failed (exit {proc.returncode}); log {log}:\n{tail}")


def run(name: str, work: Path) -> dict:
    """Run one recorded configuration from scratch and collect its numbers."""
    _, template = RUNS[name]
    run_dirs = {n: str(work / n) for n in RUNS}
    args = [a.format(work=work, run=run_dirs) for a in template]
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    args[1:1] = ["--out", str(out)]
    start = time.perf_counter()
    budgetlm(args, work, work / f"{name}.log")
    print(f"  {name}: {time.perf_counter() - start:.0f}s", file=sys.stderr)
    return collect(out) | {"argv": ["budgetlm", *args]}


def collect(out: Path) -> dict:
    steps, evals = {}, {}
    for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        numbers = _numbers(rec)
        step = str(numbers.pop("step"))
        if any(k.startswith("eval_") for k in numbers):
            # a run can evaluate twice at one step (train.keep_best's re-evaluation): number them
            key = step if step not in evals else f"{step}#{sum(k.split('#')[0] == step for k in evals)}"
            evals[key] = numbers
        elif "loss" in numbers:
            steps[step] = numbers
    results = _numbers(json.loads((out / "results.json").read_text(encoding="utf-8")))
    return {"steps": steps, "evals": evals, "results": results}


def _numbers(obj, prefix: str = "") -> dict:
    """Flatten nested dicts/lists to {dotted key: number}, leaving out timing figures and non-numbers."""
    flat = {}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, (dict, list)):
            flat.update(_numbers(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and not TIMING.search(str(k)):
            flat[key] = v
    return flat


def compare(base: dict, new: dict, tol: float) -> tuple[int, int, float, list[str], list[str]]:
    """(loss steps compared, numbers compared, max abs diff, problems, numbers only the new run has)."""
    problems, added, worst, n = [], [], 0.0, 0

    def name(*parts):
        return " ".join(str(x) for x in parts if x != "")
    for part in ("steps", "evals", "results"):
        b, c = base[part], new[part]
        if part == "results":
            b, c = {"": b}, {"": c}
        for key in b:
            if key not in c:
                problems.append(f"{name(part, key)}: missing from the new run")
                continue
            added += [name(part, key, k) for k in c[key] if k not in b[key]]
            for field, value in b[key].items():
                if field not in c[key]:
                    problems.append(f"{name(part, key, field)}: missing from the new run")
                    continue
                n += 1
                diff = abs(float(c[key][field]) - float(value))
                if math.isnan(diff):
                    diff = 0.0 if math.isnan(float(value)) and math.isnan(float(c[key][field])) else math.inf
                worst = max(worst, diff)
                if diff > tol:
                    problems.append(f"{name(part, key, field)}: {value!r} -> {c[key][field]!r} (|diff| {diff:.3g})")
        added += [name(part, key) for key in c if key not in b]
    return len(base["steps"]), n, worst, problems, added


def order(names: list[str]) -> list[str]:
    """The runs asked for, with the runs they need first."""
    done: list[str] = []

    def visit(name):
        if name not in done:
            for need in RUNS[name][0]:
                visit(need)
            done.append(name)
    for name in names:
        visit(name)
    return done


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", metavar="FILE", help="run everything and write the numbers to FILE (JSON)")
    mode.add_argument("--check", metavar="FILE", help="rerun the runs recorded in FILE and compare")
    p.add_argument("--work", help="directory for the data, tokenizer and run dirs (default: a temporary one, removed)")
    p.add_argument("--runs", help=f"comma-separated subset of {', '.join(RUNS)} (the runs they need come along)")
    p.add_argument("--tol", type=float, default=TOL, help="largest allowed absolute difference (default 1e-6)")
    args = p.parse_args(argv)
    import torch  # only for the provenance line

    data_root = Path(os.environ.get("BUDGETLM_DATA", ROOT / "data")).expanduser()
    base = json.loads(Path(args.check).read_text(encoding="utf-8")) if args.check else None
    names = args.runs.split(",") if args.runs else list(base["runs"] if base else RUNS)
    unknown = [n for n in names if n not in RUNS or (base and n not in base["runs"])]
    if unknown:
        p.error(f"unknown or unrecorded run(s) {unknown}; known: {', '.join(base['runs'] if base else RUNS)}")
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="refactor-equivalence-")
    work = Path(args.work or tmp.name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        prepare(work, data_root, base["tokenizer_json"] if base else None)
        tokenizer_json = (work / "tokenizer" / "tokenizer.json").read_text(encoding="utf-8")
        results = {name: run(name, work) for name in order(names)}
        print(f"  all runs: {time.perf_counter() - start:.0f}s", file=sys.stderr)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.record:
        doc = {"commit": _git_head(), "torch": torch.__version__, "python": sys.version.split()[0], "runs": results,
               "tokenizer_json": tokenizer_json}
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        Path(args.record).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"recorded {len(results)} runs -> {args.record}")
        return 0
    print(f"baseline: commit {base.get('commit', '?')[:12]} (torch {base.get('torch')}); now: {_git_head()[:12]} "
          f"(torch {torch.__version__})")
    print(f"{'run':<22} {'loss steps':>10} {'numbers':>8} {'max |diff|':>11}  verdict")
    failed = False
    for name in names:
        steps, n, worst, problems, added = compare(base["runs"][name], results[name], args.tol)
        print(f"{name:<22} {steps:>10} {n:>8} {worst:>11.3g}  {'MISMATCH' if problems else 'same'}")
        for line in problems[:20] + [f"... {len(problems) - 20} more" for _ in problems[20:21]]:
            print(f"    {line}")
        if added:
            print(f"    (new numbers, not compared: {', '.join(added[:8])}{' ...' if len(added) > 8 else ''})")
        failed |= bool(problems)
    print("MISMATCH: the refactor changed results" if failed else f"all {len(names)} runs match (tol {args.tol:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
