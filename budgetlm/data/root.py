"""Where real data sets live: $BUDGETLM_DATA, else a `shared/data` folder beside the repo or the cwd."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from budgetlm.errors import UserError


def data_root(required: bool = True) -> Path | None:
    env = os.environ.get("BUDGETLM_DATA")
    if env:
        p = Path(env)
        if not p.is_dir():
            raise UserError("BUDGETLM_DATA does not point to a directory", path=env)
        return p
    here = Path(__file__).resolve()
    for base in (Path.cwd(), here.parents[2]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    if required:
        raise UserError("no data root: set BUDGETLM_DATA to the folder holding the shared data sets")
    return None


def in_root(*parts: str) -> Path:
    p = data_root().joinpath(*parts)
    if not p.exists():
        raise UserError("expected data file is missing from the data root", path=str(p))
    return p


def english_pretraining_files() -> list[Path]:
    """The shared English pre-training text: NLTK Gutenberg selections + State of the Union speeches."""
    root = data_root()
    files = sorted(p for p in (root / "gutenberg").glob("*.txt"))
    files.append(root / "state_union" / "state_union.zip")
    missing = [str(f) for f in files if not f.exists()]
    if not files or missing:
        raise UserError(f"English pre-training text missing in the data root ({', '.join(missing) or root})")
    return files


def wikitext2(split: str) -> Path:
    return in_root("wikitext-2-raw", f"wiki.{split}.raw")


DATA_PREFIX = "data:"


def resolve_data_path(path: str) -> str:
    """`data:tinyshakespeare/input.txt` -> that file in the data root (so committed configs name shared data
    without a machine-specific path); any other path is returned unchanged."""
    if path.startswith(DATA_PREFIX):
        return str(in_root(*Path(path[len(DATA_PREFIX):]).parts))
    return path


GLOB_CHARS = "*?["


def resolve_data_paths(path: str) -> list[str]:
    """Like resolve_data_path, and a glob pattern (`data:ruslit/prose/*/*.txt`, `texts/**/*.txt`) names every file
    it matches, sorted, so that a config can name a folder of books; a pattern matching no file is an error. A path
    that exists as written is taken literally, even with [ or * in its name."""
    inside = path.startswith(DATA_PREFIX)
    pattern = str(data_root() / path[len(DATA_PREFIX):]) if inside else path
    if not any(c in pattern for c in GLOB_CHARS) or Path(pattern).exists():
        return [resolve_data_path(path)]
    matches = sorted(p for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not matches:
        where = "in the data root " if inside else ""
        raise UserError(f"no file {where}matches this pattern", path=pattern)
    return matches
