"""Writing files so that a crash never leaves a half-written result: digests, fsync, atomic replace."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from budgetlm.errors import UserError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """fsync every file in `path`, then the directory entry itself."""
    for f in Path(path).iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished directory `tmp` to `out`, replacing an existing `out` (renames only)."""
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


@contextmanager
def replacing(path: Path):
    """Yield a temporary path beside `path` (same suffix, so numpy and matplotlib pick the right format); when
    the body succeeds it replaces `path` in one rename, when it fails it is removed: `path` is never half-written."""
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))


def check_output_file(out: Path, hint: str) -> None:
    """Before the work: `out` must name a file in an existing directory (`hint` says what to give instead)."""
    if out.is_dir():
        raise UserError(f"--out is a directory; {hint}", path=str(out))
    if not out.parent.is_dir():
        raise UserError("the output directory does not exist", path=str(out.parent))
