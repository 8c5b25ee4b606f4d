"""A tiny pre-trained encoder made the way a user's default `pretrain` makes it (the budget recipe's architecture,
at a tiny size), and labelled sentence files, shared by the stage tests."""

from __future__ import annotations

import pytest

from budgetlm.cli import main
from tests.test_cli import TINY_MODEL, TINY_TRAIN, labelled_rows, write_tsv

# the recipe's encoder at a tiny size; uncompiled and fp32 so that it takes a second
RECIPE_TINY = [k for k in TINY_MODEL if k != "preset=none"] + ["train.compile=false", "train.precision=fp32"]


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, write_text_files):
    """A directory with pre/ (a 6-step default pre-training run), train.tsv (48 rows) and dev.tsv (16 rows)."""
    d = tmp_path_factory.mktemp("stages")
    write_text_files(d)
    write_tsv(d / "train.tsv", labelled_rows(0, 48))
    write_tsv(d / "dev.tsv", labelled_rows(1, 16))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUDGETLM_CACHE", str(d / "cache"))
        mp.setenv("BUDGETLM_DATA", str(d / "no-data-root"))
        assert main(["tokenizer", "--vocab-size", "100", "--out", str(d / "tok"), str(d / "train.txt")]) == 0
        assert main(["pretrain", "--tokenizer", str(d / "tok"), "--train", str(d / "train.txt"), "--valid",
                     str(d / "valid.txt"), "--budget", "6steps", "--out", str(d / "pre"), *RECIPE_TINY, *TINY_TRAIN]) == 0
    return d
