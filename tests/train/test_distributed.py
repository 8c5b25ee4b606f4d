"""Data-parallel training under torchrun, on 2 gloo processes on this CPU.

Equivalences (dropout 0, same seeds; tolerance: losses within 1e-4 absolute -- metrics.jsonl rounds them to
5 decimals -- and weights within 1e-5 absolute, the room float reduction order needs after a few AdamW steps):
- fine-tuning: 2 ranks x batch 8 follow the loss curve of 1 rank x batch 16;
- pre-training: 2 ranks x batch 8 follow 1 rank x batch 8 x grad_accum 2 (the same global micro-batches with the
  same masking seeds; a single batch of 16 is masked by one generator, so its masks differ by construction);
- resuming with another number of ranks (1 -> 2 and 2 -> 1) at the same global batch lands on the same weights;
- a wall-clock budget ends both ranks on the same step (otherwise a collective would hang and the launch time out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from budgetlm.cli import main
from budgetlm.data.batches import EpochSampler
from budgetlm.models import build_mlm_model
from budgetlm.models.config import ModelConfig
from budgetlm.models.io import model_meta, save_model
from budgetlm.tokenizer import train_tokenizer
from budgetlm.train.checkpoint import list_checkpoints
from budgetlm.train.logs import read_metrics

from test_cli import labelled_rows, write_tsv

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32",
        "model.dropout=0", "preset=none", "train.log_every=1", "train.threads=1", "train.tune_allocator=false"]
LOSS_TOL, WEIGHT_TOL = 1e-4, 1e-5


# ------------------------------------------------------------------------------------------------ sharding

@pytest.mark.parametrize("n", [40, 37])
def test_ranks_split_the_global_batch_and_never_repeat_within_an_epoch(n):
    single = EpochSampler(n, 12, seed=3)
    shards = [EpochSampler(n, 4, seed=3) for _ in range(3)]
    for rank, s in enumerate(shards):
        s.shard(rank, 3)
    seen = []
    for _ in range(3):  # 36 of n sequences: within the first epoch
        parts = [s.next_indices() for s in shards]
        assert np.array_equal(np.concatenate(parts), single.next_indices())
        seen.extend(np.concatenate(parts).tolist())
    assert len(seen) == len(set(seen))
    assert all(s.state_dict() == single.state_dict() for s in shards)  # positions count global sequences


def test_a_position_saved_by_two_ranks_resumes_on_one():
    two = [EpochSampler(50, 5, seed=1) for _ in range(2)]
    for rank, s in enumerate(two):
        s.shard(rank, 2)
        for _ in range(7):
            s.next_indices()
    one = EpochSampler(50, 10, seed=1)
    one.load_state_dict(two[0].state_dict())
    reference = EpochSampler(50, 10, seed=1)
    for _ in range(7):
        reference.next_indices()
    assert np.array_equal(one.next_indices(), reference.next_indices())


# ------------------------------------------------------------------------------------------------ torchrun

def run_in_process(argv: list) -> None:
    assert main([str(a) for a in argv]) == 0


def pretrain_argv(d: Path, out: Path, batch: int, accum: int, *extra, budget="6steps") -> list:
    return ["pretrain", "--tokenizer", d / "tok", "--train", d / "train.txt", "--valid", d / "valid.txt",
            "--budget", budget, "--out", out, *TINY, f"train.batch_size={batch}", f"train.grad_accum={accum}",
            "train.checkpoint_every=3steps", "train.keep_checkpoints=5", *extra]


def finetune_argv(d: Path, out: Path, batch: int) -> list:
    return ["finetune", "--model", d / "base", "--train", d / "train.tsv", "--valid", d / "dev.tsv", "--budget",
            "8steps", "--out", out, *TINY[6:], "dropout=0", "head.dropout=0", f"train.batch_size={batch}"]


def rewind_to_first_checkpoint(run: Path, copy: Path) -> Path:
    """A copy of a finished run as it was when only its first checkpoint existed (as if killed there)."""
    shutil.copytree(run, copy)
    for ckpt in list_checkpoints(copy)[1:]:
        shutil.rmtree(ckpt)
    shutil.rmtree(copy / "model")
    (copy / "results.json").unlink()
    return copy


def torchrun(plan: list[list], d: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    (d / "plan.json").write_text(json.dumps([[str(a) for a in argv] for argv in plan]))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "train" / "ddp_worker.py"), str(d / "plan.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory, write_text_files):
    d = tmp_path_factory.mktemp("ddp")
    paragraphs = write_text_files(d)
    (d / "tok").mkdir()
    train_tokenizer("wordpiece", 100, paragraphs).save(str(d / "tok" / "tokenizer.json"))
    write_tsv(d / "train.tsv", labelled_rows(0, 48))
    write_tsv(d / "dev.tsv", labelled_rows(1, 12))
    torch.manual_seed(0)
    base = build_mlm_model(ModelConfig(vocab_size=100, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_seq_len=32, dropout=0.0))
    save_model(base, d / "base", model_meta(base, "mlm"), d / "tok" / "tokenizer.json")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUDGETLM_CACHE", str(d / "cache"))
        run_in_process(finetune_argv(d, d / "ft-1x16", 16))
        run_in_process(pretrain_argv(d, d / "pre-1x8x2", 8, 2))
        rewind_to_first_checkpoint(d / "pre-1x8x2", d / "resume-1to2")
        proc = torchrun([
            finetune_argv(d, d / "ft-2x8", 8),
            pretrain_argv(d, d / "pre-2x8", 8, 1),
            pretrain_argv(d, d / "resume-1to2", 8, 1, "--resume"),
            pretrain_argv(d, d / "timed-2x8", 4, 1, budget="2s"),
        ], d)
        rewind_to_first_checkpoint(d / "pre-2x8", d / "resume-2to1")
        run_in_process(pretrain_argv(d, d / "resume-2to1", 8, 2, "--resume"))
    return d, proc


def losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run) if "loss" in r]


def assert_close_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst <= WEIGHT_TOL, f"weights differ by up to {worst:.2e}"


def test_two_ranks_of_8_follow_one_rank_of_16_when_fine_tuning(runs):
    d, _ = runs
    one, two = losses(d / "ft-1x16"), losses(d / "ft-2x8")
    assert len(one) == len(two) == 8
    assert np.allclose(one, two, rtol=0, atol=LOSS_TOL), (one, two)
    assert_close_weights(d / "ft-1x16", d / "ft-2x8")
    r1, r2 = (json.loads((d / r / "results.json").read_text()) for r in ("ft-1x16", "ft-2x8"))
    assert r1["accuracy"] == r2["accuracy"]


def test_two_ranks_follow_the_same_global_micro_batches_when_pre_training(runs):
    d, _ = runs
    one, two = losses(d / "pre-1x8x2"), losses(d / "pre-2x8")
    assert len(one) == len(two) == 6
    assert np.allclose(one, two, rtol=0, atol=LOSS_TOL), (one, two)
    assert_close_weights(d / "pre-1x8x2", d / "pre-2x8")
    tokens = [r["tokens"] for r in read_metrics(d / "pre-2x8") if "loss" in r]
    assert tokens == [16 * 32 * s for s in range(1, 7)]  # global tokens: both ranks' sequences count


def test_resume_with_another_number_of_ranks(runs):
    d, proc = runs
    assert_close_weights(d / "pre-1x8x2", d / "resume-1to2")
    assert_close_weights(d / "pre-2x8", d / "resume-2to1")
    assert losses(d / "resume-1to2") == pytest.approx(losses(d / "pre-1x8x2"), abs=LOSS_TOL)
    assert proc.stderr.count("resumed from step 3") == 1  # printed by rank 0 only


def test_rank_0_alone_writes_and_saves_unwrapped_weights(runs):
    d, proc = runs
    run = d / "pre-2x8"
    assert [r["step"] for r in read_metrics(run) if "loss" in r] == list(range(1, 7))  # each step logged once
    assert json.loads((run / "config.json").read_text())["resolved"]["ranks"] == 2
    ckpt = load_file(str(list_checkpoints(run)[-1] / "model.safetensors"))
    assert not any(k.startswith(("module.", "model.")) for k in ckpt)  # no DDP / StepModule prefixes
    assert ckpt.keys() == load_file(str(run / "model" / "model.safetensors")).keys()
    assert proc.stdout.count("pre-training finished") == 3 and proc.stdout.count("fine-tuning finished") == 1
    assert not any(p.name.startswith(".") for p in (run / "checkpoints").iterdir())


def test_a_time_budget_ends_both_ranks_on_the_same_step(runs):
    d, _ = runs
    results = json.loads((d / "timed-2x8" / "results.json").read_text())
    assert results["train_seconds"] >= 2.0 and results["steps"] >= 1
    steps = [r["step"] for r in read_metrics(d / "timed-2x8") if "loss" in r]
    assert steps == list(range(1, results["steps"] + 1))
