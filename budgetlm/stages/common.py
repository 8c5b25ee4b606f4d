"""What every stage does first: check inputs and the run directory; and find the model a stage starts from."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from budgetlm.data.readers import check_input_file
from budgetlm.errors import UserError


def prepare_run_dir(run_dir: Path, resume: bool, inputs: list[str] = ()) -> None:
    """Fail before any heavy work: missing inputs, a run that would be overwritten, an unwritable --out."""
    from budgetlm.train.loop import existing_run_problem  # here, so that importing this module needs no torch

    for f in inputs:
        if Path(f).is_dir() and (Path(f) / "tokenizer.json").exists():
            continue
        check_input_file(f)
    problem = existing_run_problem(run_dir, resume)
    if problem:
        raise UserError(problem)
    make_output_dir(run_dir)


def make_output_dir(out: Path) -> None:
    """Create `out` (and its parents) and check that a file can be written there; a UserError otherwise."""
    if out.exists() and not out.is_dir():
        raise UserError("--out exists and is not a directory", path=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as e:
        raise UserError(f"cannot write to the output directory ({e.strerror})", path=str(out)) from None


@contextmanager
def tidy_on_failure(out: Path):
    """If the body fails, remove the directories it created under `out` (`out` included) that are still empty,
    so a refused run leaves no empty report or run folder behind. Files are never removed: a finished run
    inside `out` stays, and the next attempt reuses it."""
    def folders() -> set[str]:
        return {w[0] for w in os.walk(out)} if out.is_dir() else set()

    before = folders()
    try:
        yield
    except BaseException:
        for folder in sorted(folders() - before, key=len, reverse=True):  # deepest first
            try:
                os.rmdir(folder)  # only succeeds when empty
            except OSError:
                pass
        raise


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def load_any_model(path: str | Path, trust_pickle: bool = False):
    """(model, meta, tokenizer.json path) from a run dir, a budgetlm model dir, or an exported HF dir.

    Weights are read from safetensors files; a pickled pytorch_model.bin only with `trust_pickle`.
    """
    from budgetlm.models.io import TOKENIZER, load_model, resolve_model_dir

    p = Path(path)
    if not p.exists():
        raise UserError("model path not found", path=str(p))
    if p.is_file():
        what = "a pickled PyTorch file, which budgetlm never unpickles" if p.suffix.lower() in PICKLE_SUFFIXES else "a file"
        raise UserError(f"is {what}; give a run dir, a model dir or a transformers dir (config.json + model.safetensors)",
                        path=str(p))
    model_dir = resolve_model_dir(p)
    if model_dir is not None:
        model, meta = load_model(model_dir)
        return model, meta, model_dir / TOKENIZER
    if (p / "config.json").is_file():
        from budgetlm.export.hf import load_any

        return load_any(p, trust_pickle)
    raise UserError("not a budgetlm run or model directory, nor a transformers export", path=str(p))
