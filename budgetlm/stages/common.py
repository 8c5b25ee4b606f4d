"""What every stage does first: check inputs and the run directory (models/load.py finds the model it starts from)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from budgetlm.data.readers import check_input_file
from budgetlm.errors import UserError


def prepare_run_dir(run_dir: Path, resume: bool, inputs: list[str] = ()) -> bool:
    """Fail before any heavy work: missing inputs, a run that would be overwritten, an unwritable --out.
    Returns whether the run continues from a checkpoint (--resume with none yet starts from the beginning)."""
    from budgetlm.train.loop import existing_run_problem, starts_from_checkpoint  # here: importing this needs no torch

    for f in inputs:
        if Path(f).is_dir() and (Path(f) / "tokenizer.json").exists():
            continue
        check_input_file(f)
    problem = existing_run_problem(run_dir, resume)
    if problem:
        raise UserError(problem)
    make_output_dir(run_dir)
    return starts_from_checkpoint(run_dir, resume)


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

