"""Atomic, self-checking training checkpoints.

`<run>/checkpoints/step_00001234/` holds
    model.safetensors      unwrapped model state dict
    optimizer.safetensors  optimizer tensors (AdamW moments, step counts) + RNG state
    state.json             loop state, optimizer param groups, sha256 of both weight files
It is written into a temporary directory, fsynced, then renamed, so a checkpoint directory either exists
complete or not at all. Loading verifies the checksums and falls back to the previous checkpoint when the
newest is damaged. Only safetensors and JSON are read: nothing is unpickled.

With train.keep_best, `<run>/checkpoints/best-model.safetensors` holds the weights of the best evaluation so far.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from budgetlm.atomic import fsync_dir, replacing, sha256_file
from budgetlm.errors import UserError
from budgetlm.models.io import cpu_state_dict

CKPT_DIR = "checkpoints"
WEIGHT_FILES = ("model.safetensors", "optimizer.safetensors")
PREFIX = "step_"


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{idx}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, extra: dict) -> None:
    state: dict = {}
    for key, v in tensors.items():
        if not key.startswith("state."):
            continue
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = v
    for key, v in extra["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": extra["param_groups"]})


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer, loop_state: dict, keep: int) -> Path:
    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    for stale in root.glob(".tmp-*"):  # left by a process killed mid-write (one writer per run: rank 0)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-{PREFIX}{step:08d}-{os.getpid()}"
    tmp.mkdir()
    try:
        _write(tmp, step, model, opt, loop_state)
    except BaseException:  # disk full, Ctrl-C...: leave no partial checkpoint behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():  # a damaged checkpoint of this step, skipped by the resume that is now replacing it
        shutil.rmtree(final)
    tmp.rename(final)
    fsync_dir(root)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write(tmp: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer, loop_state: dict) -> None:
    save_file(cpu_state_dict(model), str(tmp / "model.safetensors"))
    tensors, opt_extra = _optimizer_tensors(opt)
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    state = {
        "step": step,
        "loop": loop_state,
        "optimizer": opt_extra,
        "sha256": {f: sha256_file(tmp / f) for f in WEIGHT_FILES},
    }
    (tmp / "state.json").write_text(json.dumps(state))
    fsync_dir(tmp)


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def verify(ckpt: Path) -> str | None:
    """None if the checkpoint is intact, else what is wrong."""
    try:
        state = json.loads((ckpt / "state.json").read_text())
    except (OSError, ValueError) as e:  # missing, cut short, not UTF-8
        return f"state.json unreadable ({e.__class__.__name__})"
    digests = state.get("sha256") if isinstance(state, dict) else None
    if not isinstance(digests, dict) or set(digests) != set(WEIGHT_FILES):
        return "state.json has no checksums for " + " and ".join(WEIGHT_FILES)
    for name, digest in digests.items():
        if not (ckpt / name).is_file():
            return f"{name} missing"
        if sha256_file(ckpt / name) != digest:
            return f"{name} checksum mismatch (truncated or corrupted)"
    return None


def load_latest(run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict | None:
    """Restore the newest intact checkpoint into model/opt and the torch RNG; return its loop state."""
    for ckpt in reversed(list_checkpoints(run_dir)):
        problem = verify(ckpt)
        if problem:
            print(f"warning: skipping damaged checkpoint {ckpt}: {problem}", file=sys.stderr)
            continue
        state = json.loads((ckpt / "state.json").read_text())
        try:
            model.load_state_dict(load_file(str(ckpt / "model.safetensors")), strict=True)
            tensors = load_file(str(ckpt / "optimizer.safetensors"))
            _restore_optimizer(opt, tensors, state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0][:200]
            raise UserError(f"this checkpoint does not fit the model being trained ({first}); resume with the "
                            "model and train settings the run started with", path=str(ckpt)) from None
        torch.set_rng_state(tensors["rng.torch"])
        state["loop"]["checkpoint"] = str(ckpt)
        return state["loop"]
    return None


BEST_FILE = "best-model.safetensors"  # train.keep_best: the best evaluation's weights, beside the checkpoints


def save_best(run_dir: Path, model: torch.nn.Module, step: int) -> None:
    """Write the model's weights as the best so far (atomically; the step is recorded in the file's metadata)."""
    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    with replacing(root / BEST_FILE) as tmp:
        save_file(cpu_state_dict(model), str(tmp), metadata={"step": str(step)})


def load_best(run_dir: Path, model: torch.nn.Module, step: int) -> bool:
    """Load the weights save_best wrote at `step`; False if the file is missing, damaged or from another step."""
    path = Path(run_dir) / CKPT_DIR / BEST_FILE
    try:
        with safe_open(str(path), "pt") as f:
            if (f.metadata() or {}).get("step") != str(step):
                return False
        model.load_state_dict(load_file(str(path)), strict=True)
    except (OSError, RuntimeError, ValueError, KeyError):
        return False
    return True
