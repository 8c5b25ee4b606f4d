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


def test_globs_name_every_matching_file_sorted(tmp_path, monkeypatch):
    from budgetlm.data.root import resolve_data_paths

    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path))
    for author, titles in {"Tolstoy": ["Анна Каренина.txt", "Альберт.txt"], "Gogol": ["Нос.txt"]}.items():
        (tmp_path / "ruslit" / "prose" / author).mkdir(parents=True)
        for t in titles:
            (tmp_path / "ruslit" / "prose" / author / t).write_text("текст\n")
        (tmp_path / "ruslit" / "prose" / author / "info.csv").write_text("name,year\n")
    (tmp_path / "ruslit" / "prose" / "Gogol" / "notes.txt").mkdir()  # a directory is never a match
    prose = tmp_path / "ruslit" / "prose"
    expected = [str(prose / "Gogol" / "Нос.txt"), str(prose / "Tolstoy" / "Альберт.txt"), str(prose / "Tolstoy" / "Анна Каренина.txt")]
    assert resolve_data_paths("data:ruslit/prose/*/*.txt") == expected
    assert resolve_data_paths(str(prose / "*" / "*.txt")) == expected  # outside the data: prefix too
    assert resolve_data_paths(str(tmp_path / "**" / "info.csv")) == [str(prose / a / "info.csv") for a in ("Gogol", "Tolstoy")]
    # no pattern: one path, as resolve_data_path gives it
    assert resolve_data_paths("data:ruslit/prose/Gogol/Нос.txt") == [str(prose / "Gogol" / "Нос.txt")]
    assert resolve_data_paths("not/checked/here.txt") == ["not/checked/here.txt"]
    literal = tmp_path / "notes[1].txt"  # a file whose name looks like a pattern is taken as written
    literal.write_text("x\n")
    assert resolve_data_paths(str(literal)) == [str(literal)]
    with pytest.raises(UserError) as e:
        resolve_data_paths("data:ruslit/poems/*/*.txt")
    assert str(e.value) == f"{tmp_path / 'ruslit/poems/*/*.txt'}: no file in the data root matches this pattern"


def test_pretraining_files_expand_globs_in_order(tmp_path, monkeypatch):
    from budgetlm.stages.config import PretrainConfig
    from budgetlm.stages.pretrain import resolve_files

    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path))
    (tmp_path / "books").mkdir()
    for name in ("b.txt", "a.txt"):
        (tmp_path / "books" / name).write_text("текст\n")
    (tmp_path / "posts.csv").write_text("label,text\nneutral,пост\n")
    cfg = PretrainConfig()
    cfg.data.train = ["data:posts.csv", "data:books/*.txt", "data:posts.csv"]
    cfg.data.valid_fraction = 0.01
    files, valid = resolve_files(cfg)
    assert files == [str(tmp_path / "posts.csv"), str(tmp_path / "books" / "a.txt"), str(tmp_path / "books" / "b.txt"),
                     str(tmp_path / "posts.csv")] and valid is None
