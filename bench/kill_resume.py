"""Kill -9 a pre-training run at random moments, resume it after every kill, and compare the finished run
with an uninterrupted one (bitwise: same weights, same logged losses).

    python bench/kill_resume.py --runs 5 --kills 4 --out /tmp/kill-resume

Each run gets `--kills` SIGKILLs, each at a random training step (uniform over the steps this attempt has still
to run, as its metrics.jsonl reports them), so the kills land however fast the machine is; an attempt that
finishes before its kill lands simply ends the run.
tests/train/test_faults.py runs the same harness with 3 kills. Prints one JSON line per run and a summary.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from budgetlm.tokenizer import train_tokenizer
from budgetlm.train.checkpoint import list_checkpoints
from common import REPO, budgetlm_cmd, cli_env, machine_line, read_metrics


def pretrain_argv(inputs: Path, out: Path, steps: int) -> list[str]:
    """A tiny pre-training run with dropout on (so resuming must restore the RNG) and frequent checkpoints."""
    return ["pretrain", "--tokenizer", str(inputs / "tokenizer.json"), "--train", str(inputs / "train.txt"),
            "--valid", str(inputs / "valid.txt"), "--budget", f"{steps}steps", "--out", str(out),
            "model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32",
            "model.dropout=0.1", "train.batch_size=4", "train.log_every=1", "train.threads=1",
            "train.checkpoint_every=5steps", "train.keep_checkpoints=2", f"data.cache_dir={inputs / 'cache'}"]


def launch(argv: list[str], log) -> subprocess.Popen:
    env = cli_env(threads=1, TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen(budgetlm_cmd(*argv), env=env, stdout=log, stderr=log)


def resumed_step(run: Path) -> int:
    ckpts = list_checkpoints(run)
    return int(ckpts[-1].name.removeprefix("step_")) if ckpts else 0


def wait_for_step(proc: subprocess.Popen, run: Path, since_ns: int, step: int, timeout: float = 300) -> bool:
    """True once this attempt has logged training step `step` or a later one (False if it ended first)."""
    metrics = run / "metrics.jsonl"
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if metrics.exists() and metrics.stat().st_mtime_ns > since_ns:  # rewritten by this attempt, then appended
            steps = [r["step"] for r in read_metrics(run) if "loss" in r]
            if steps and steps[-1] >= step:
                return True
        time.sleep(0.005)
    return False


def run_with_kills(argv: list[str], run: Path, kills: int, rng: random.Random, steps: int) -> dict:
    """Run to completion (`steps` training steps), SIGKILLing it `kills` times, each at a random step of the
    attempt. Every attempt passes --resume, as a retry loop does: it continues from the last checkpoint, or starts
    afresh when the kill came before the first one (issue 23). Returns what happened."""
    log = open(run.parent / f"{run.name}.log", "ab")
    killed_at, attempts = [], 0
    while True:
        attempts += 1
        start = resumed_step(run)
        started_ns = time.time_ns()
        proc = launch([*argv, "--resume"], log)
        if len(killed_at) < kills and start + 1 < steps and wait_for_step(proc, run, started_ns, rng.randint(start + 1, steps - 1)):
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                logged = [r["step"] for r in read_metrics(run) if "loss" in r]
                killed_at.append(logged[-1] if logged else 0)
                continue
        code = proc.wait()
        return {"kills": len(killed_at), "killed_after_step": killed_at, "attempts": attempts, "exit_code": code}


def same_run(a: Path, b: Path) -> tuple[bool, str]:
    """Bitwise-equal final weights and identical logged training losses."""
    wa, wb = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    differ = [k for k in wa if k not in wb or not torch.equal(wa[k], wb[k])]
    if differ or wa.keys() != wb.keys():
        return False, f"{len(differ)} tensors differ, e.g. {differ[:2]}"
    la = [(r["step"], r["loss"]) for r in read_metrics(a) if "loss" in r]
    lb = [(r["step"], r["loss"]) for r in read_metrics(b) if "loss" in r]
    if la != lb:
        return False, "logged losses differ"
    return True, "bitwise equal"


def make_inputs(d: Path) -> Path:
    spec = importlib.util.spec_from_file_location("budgetlm_test_fixtures", REPO / "tests" / "conftest.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    make_corpus = fixtures.make_corpus

    d.mkdir(parents=True, exist_ok=True)
    corpus = make_corpus(seed=0)
    (d / "train.txt").write_text(corpus)
    (d / "valid.txt").write_text("\n\n".join(corpus.split("\n\n")[:8]) + "\n")
    train_tokenizer("wordpiece", 100, corpus.split("\n\n")).save(str(d / "tokenizer.json"))
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kills", type=int, default=4, help="SIGKILLs per run")
    ap.add_argument("--steps", type=int, default=300, help="budget of each run in steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/budgetlm-kill-resume"))
    args = ap.parse_args()
    print(json.dumps({"machine": machine_line(1)}), flush=True)
    shutil.rmtree(args.out, ignore_errors=True)
    inputs = make_inputs(args.out / "inputs")
    rng = random.Random(args.seed)
    reference = args.out / "uninterrupted"
    ref = run_with_kills(pretrain_argv(inputs, reference, args.steps), reference, 0, rng, args.steps)
    assert ref["exit_code"] == 0, "the uninterrupted run failed"
    tried = survived = 0
    for i in range(args.runs):
        run = args.out / f"run{i}"
        result = run_with_kills(pretrain_argv(inputs, run, args.steps), run, args.kills, rng, args.steps)
        ok, why = same_run(reference, run) if result["exit_code"] == 0 else (False, "final attempt failed")
        tried += result["kills"]
        survived += result["kills"] if ok else 0
        print(json.dumps({"run": i, **result, "matches_uninterrupted": ok, "detail": why}), flush=True)
    print(json.dumps({"kills_tried": tried, "kills_survived": survived, "load_avg": os.getloadavg()}))


if __name__ == "__main__":
    main()
