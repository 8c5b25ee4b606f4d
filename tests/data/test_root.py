"""The data root: $BUDGETLM_DATA wins; a missing root or file is a UserError naming what is missing."""

from __future__ import annotations

import pytest

from budgetlm.data.root import data_root, english_pretraining_files, in_root, wikitext2
from budgetlm.errors import UserError


def test_env_var_points_to_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path))
    assert data_root() == tmp_path


def test_env_var_that_is_not_a_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path / "nope"))
    with pytest.raises(UserError, match="BUDGETLM_DATA does not point to a directory"):
        data_root()


def test_missing_files_in_the_root_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path))
    with pytest.raises(UserError) as e:
        wikitext2("valid")
    assert str(tmp_path / "wikitext-2-raw" / "wiki.valid.raw") in str(e.value)
    with pytest.raises(UserError, match="English pre-training text missing"):
        english_pretraining_files()


def test_in_root_finds_existing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path))
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\n")
    assert in_root("sst2", "dev.tsv") == tmp_path / "sst2" / "dev.tsv"
