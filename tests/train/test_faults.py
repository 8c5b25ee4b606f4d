"""Faults: kill -9 at random moments, damaged checkpoints, disk full / read-only output, pickled weights.

The kill test drives the CLI in a subprocess through bench/kill_resume.py's harness: 3 SIGKILLs at random
moments of one tiny run (dropout on), each followed by --resume; the finished run must be bitwise equal to an
uninterrupted one (weights and every logged loss).
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import pytest

from budgetlm.train.checkpoint import list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import kill_resume  # noqa: E402

STEPS = 120


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return kill_resume.make_inputs(tmp_path_factory.mktemp("kill-inputs"))


def test_kill_9_three_times_then_resume_equals_uninterrupted(inputs, tmp_path):
    reference, run = tmp_path / "reference", tmp_path / "killed"
    from budgetlm.cli import main

    assert main(kill_resume.pretrain_argv(inputs, reference, STEPS)) == 0
    result = kill_resume.run_with_kills(kill_resume.pretrain_argv(inputs, run, STEPS), run, kills=3,
                                        rng=random.Random(6), steps=STEPS)
    assert result["exit_code"] == 0, (run.parent / "killed.log").read_text()[-2000:]
    assert result["kills"] >= 2, result  # an attempt may finish before its kill lands; most must not
    ok, why = kill_resume.same_run(reference, run)
    assert ok, why
    assert not any(p.name.startswith(".tmp") for p in (run / "checkpoints").iterdir())
    assert len(list_checkpoints(run)) <= 2


# ------------------------------------------------------------------------------------------------ damaged checkpoints

def cli(capsys, argv) -> tuple[int, str]:
    from budgetlm.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert "Traceback" not in err and sum(l.startswith("error: ") for l in lines) == 1, err
    return next(l for l in lines if l.startswith("error: "))


@pytest.fixture(scope="module")
def finished(inputs, tmp_path_factory):
    """A finished 10-step run with checkpoints at steps 5 and 10."""
    from budgetlm.cli import main

    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(kill_resume.pretrain_argv(inputs, run, 10)) == 0
    return run


def interrupted_copy(finished: Path, dest: Path) -> Path:
    """The finished run as if killed right after its step-10 checkpoint."""
    shutil.copytree(finished, dest)
    shutil.rmtree(dest / "model")
    (dest / "results.json").unlink()
    return dest


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty state.json", "delete weights"])
def test_damaged_checkpoint_is_detected_and_resume_falls_back(inputs, finished, tmp_path, capsys, damage):
    run = interrupted_copy(finished, tmp_path / "run")
    newest = list_checkpoints(run)[-1]
    weights = newest / "model.safetensors"
    if damage == "flip a byte":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0x01  # same size, one bit: only a checksum sees it
        weights.write_bytes(bytes(data))
    elif damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "empty state.json":
        (newest / "state.json").write_text("")
    else:
        weights.unlink()
    code, err = cli(capsys, kill_resume.pretrain_argv(inputs, run, 10) + ["--resume"])
    assert code == 0, err
    expected = {"flip a byte": "model.safetensors checksum mismatch", "truncate": "model.safetensors checksum mismatch",
                "empty state.json": "state.json unreadable", "delete weights": "model.safetensors missing"}[damage]
    assert f"warning: skipping damaged checkpoint {newest}: {expected}" in err
    assert "resumed from step 5" in err
    ok, why = kill_resume.same_run(finished, run)
    assert ok, why  # replaying steps 6-10 from the step-5 checkpoint gives the same model


def test_resume_with_a_changed_model_is_one_clear_error(inputs, finished, tmp_path, capsys):
    run = interrupted_copy(finished, tmp_path / "run")
    code, err = cli(capsys, kill_resume.pretrain_argv(inputs, run, 10) + ["--resume", "model.d_ff=48"])
    assert code == 2
    assert "does not fit the model being trained" in one_error_line(err)


# ------------------------------------------------------------------------------------------------ disk

def test_too_little_free_space_is_refused_before_training(inputs, tmp_path, capsys, monkeypatch):
    from budgetlm.train import loop

    monkeypatch.setattr(loop.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    run = tmp_path / "run"
    code, err = cli(capsys, kill_resume.pretrain_argv(inputs, run, 10))
    assert code == 2
    line = one_error_line(err)
    assert "only 0.0 MB free" in line and "train.keep_checkpoints" in line
    assert not list_checkpoints(run) and not (run / "metrics.jsonl").exists() and not (run / "results.json").exists()


def test_disk_full_while_checkpointing_keeps_the_last_good_checkpoint(inputs, tmp_path, capsys, monkeypatch):
    import errno

    from budgetlm.train import checkpoint

    real, calls = checkpoint.save_file, []

    def save_file(tensors, path, *a, **k):
        calls.append(path)
        if len(calls) > 2:  # the second checkpoint's first file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(checkpoint, "save_file", save_file)
    run = tmp_path / "run"
    code, err = cli(capsys, kill_resume.pretrain_argv(inputs, run, 10))
    assert code == 2
    line = one_error_line(err)
    assert "cannot write a checkpoint at step 10 (No space left on device)" in line and "step_00000005 is intact" in line
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000005"]  # no partial step_10 or temp dir
    assert not (run / "results.json").exists()


def test_read_only_output_directory_is_refused_before_training(inputs, capsys):
    code, err = cli(capsys, kill_resume.pretrain_argv(inputs, Path("/sys/budgetlm-run"), 10))
    assert code == 2
    assert "error: /sys/budgetlm-run: cannot write to the output directory" in one_error_line(err)


# ------------------------------------------------------------------------------------------------ pickles

@pytest.fixture(scope="module")
def pickled_hf_dir(finished, tmp_path_factory):
    """An exported transformers dir whose weights are only a pytorch_model.bin (legacy format)."""
    import torch
    from safetensors.torch import load_file

    from budgetlm.exporters.writers import export_hf

    out = export_hf(finished, tmp_path_factory.mktemp("hf") / "export", verify=False)
    legacy = out.parent / "legacy"
    shutil.copytree(out, legacy)
    torch.save(load_file(str(legacy / "model.safetensors")), legacy / "pytorch_model.bin")
    (legacy / "model.safetensors").unlink()
    return out, legacy


@pytest.mark.parametrize("command", ["fill-mask", "finetune", "export"])
def test_pickled_weights_are_refused_without_trust_pickle(pickled_hf_dir, tmp_path, capsys, monkeypatch, command):
    import torch

    _, legacy = pickled_hf_dir
    argv = {"fill-mask": ["fill-mask", legacy, "the [MASK] sees a dog ."],
            "finetune": ["finetune", "--model", legacy, "--train", legacy / "config.json", "--valid", legacy / "config.json",
                         "--out", tmp_path / "ft"],
            "export": ["export", legacy, "--out", tmp_path / "again"]}[command]
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load must not run without --trust-pickle"))
    code, err = cli(capsys, argv)
    assert code == 2
    line = one_error_line(err)
    assert "pytorch_model.bin" in line and "--trust-pickle" in line


def test_trust_pickle_loads_the_same_model(pickled_hf_dir, capsys):
    out, legacy = pickled_hf_dir
    from budgetlm.cli import main

    capsys.readouterr()
    assert main(["fill-mask", str(out), "the [MASK] sees a dog ."]) == 0
    from_safetensors = capsys.readouterr().out
    assert main(["fill-mask", str(legacy), "the [MASK] sees a dog .", "--trust-pickle"]) == 0
    assert capsys.readouterr().out == from_safetensors


def test_a_bare_pickle_file_is_refused(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"\x80\x04not a real pickle")
    code, err = cli(capsys, ["fill-mask", tmp_path / "model.pt", "a [MASK] .", "--trust-pickle"])
    assert code == 2 and "pickled PyTorch file" in one_error_line(err)
