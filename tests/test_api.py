"""The Python API (budgetlm/api.py): README's example runs as written (tiny settings swapped in), each function
mirrors its command's flags and defaults, builds its config the way the command line does, and `import budgetlm`
imports none of it."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import budgetlm
from budgetlm import api
from budgetlm.cli import build_parser, command_config
from budgetlm.errors import UserError
from tests.test_cli import TINY_TRAIN, labelled_rows
from tests.test_cli_tasks import RECIPE_MODEL
from tests.test_cli_tasks import conll_sentences, pair_rows, write_mrpc

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- tests/test_api.py runs this block -->"


def readme_example() -> str:
    """The ```python block right after MARKER in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(MARKER) + r"\n```python\n(.*?)\n```", text, re.S)
    assert found, f"README.md has no ```python block after {MARKER}"
    return found.group(1)


def write_example_inputs(d: Path, root: Path, corpus_text: str) -> None:
    """The files README's example names (in d), and a data root with tiny MRPC and WikiANN files."""
    paragraphs = corpus_text.split("\n\n")
    (d / "my_corpus").mkdir()
    (d / "my_corpus" / "a.txt").write_text("\n\n".join(paragraphs[:20]) + "\n")
    (d / "my_corpus" / "b.txt").write_text("\n\n".join(paragraphs[20:]) + "\n")
    (d / "held_out.txt").write_text("\n\n".join(paragraphs[:8]) + "\n")
    for name, seed, n in [("labels_train.csv", 0, 24), ("labels_dev.csv", 1, 8)]:
        rows = [row.replace("\t", ",") for row in labelled_rows(seed, n)]
        (d / name).write_text("\n".join(["sentence,label", *rows]) + "\n")
    (root / "mrpc").mkdir(parents=True)
    write_mrpc(root / "mrpc" / "msr_paraphrase_train.txt", pair_rows(0, 30))
    write_mrpc(root / "mrpc" / "msr_paraphrase_test.txt", pair_rows(1, 8))
    (root / "ner-wikiann-en").mkdir()
    for split, seed, n in [("train", 0, 20), ("dev", 1, 6), ("test", 2, 6)]:
        text = conll_sentences(seed, n)
        (root / "ner-wikiann-en" / split).write_text("\n".join(f"en:{l}" if l else l for l in text.split("\n")))


def tiny(function, calls: list):
    """`function` as README calls it, but with a 3-step budget and the default (recipe) model at a tiny size, uncompiled:
    nothing else is changed."""
    def call(*args, **kwargs):
        calls.append((function.__name__, kwargs))
        if "budget" in kwargs:
            kwargs["budget"] = "3steps"
        if function is not api.export:
            extra = RECIPE_MODEL if function is api.pretrain else []
            kwargs["overrides"] = [*kwargs.get("overrides", ()), *extra, *TINY_TRAIN]
        return function(*args, **kwargs)
    return call


def test_readme_example_runs(tmp_path, monkeypatch, capsys, corpus_text):
    root = tmp_path / "data-root"
    write_example_inputs(tmp_path, root, corpus_text)
    monkeypatch.setenv("BUDGETLM_DATA", str(root))
    monkeypatch.chdir(tmp_path)
    calls = []
    for name in budgetlm.API:
        monkeypatch.setattr(budgetlm, name, tiny(getattr(api, name), calls), raising=False)

    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme_example"})

    assert [name for name, _ in calls] == ["pretrain", "finetune", "evaluate", "export"]
    out = capsys.readouterr().out
    ft = json.loads((tmp_path / "runs" / "ft" / "results.json").read_text())
    report = json.loads((tmp_path / "runs" / "eval" / "report.json").read_text())
    assert f"dev accuracy {ft['accuracy']:.3f}" in out and ft["steps"] == 3
    assert f"average over the tasks {report['average']:.3f}" in out
    assert [s["task"] for s in report["scores"]] == ["mrpc", "wikiann"]
    assert json.loads((tmp_path / "runs" / "pt" / "results.json").read_text())["steps"] == 3
    exported = json.loads((tmp_path / "exported" / "config.json").read_text())
    assert exported["architectures"][0].endswith("ForSequenceClassification")


def _flags(command: str) -> dict:
    """argparse dest -> default of `budgetlm <command>`."""
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return {a.dest: a.default for a in sub._actions if a.dest != "help"}


@pytest.mark.parametrize("name", ["pretrain", "finetune", "evaluate", "export"])
def test_each_function_takes_its_command_s_flags_with_their_defaults(name):
    flags = _flags(name)
    params = inspect.signature(getattr(api, name)).parameters
    assert set(params) == set(flags) | ({"overrides"} if name != "export" else set())
    for param in params.values():
        if param.default is not inspect.Parameter.empty and param.name != "overrides":
            assert param.default == flags[param.name], param.name
        if param.default is inspect.Parameter.empty:  # what the command requires, the function requires
            assert flags[param.name] is None, param.name


def test_config_is_built_by_the_command_line_s_code():
    values = dict(config="sst2-finetune", budget="2m", train="a.tsv", overrides=["train.lr=0.5"])
    cfg = command_config("finetune", values)
    assert (cfg.train.budget, cfg.data.train, cfg.train.lr, cfg.head.pooling) == ("2m", "a.tsv", 0.5, "mean")
    assert api._overrides({"train.lr": 1e-3, "data.group_by_length": True, "embedding.pairs": ["mrpc", Path("x")]}) \
        == ["train.lr=0.001", "data.group_by_length=true", 'embedding.pairs=["mrpc", "x"]']
    assert api._paths(Path("a.txt")) == ["a.txt"] and api._paths(["a", Path("b")]) == ["a", "b"]


def test_a_mistake_is_the_command_s_user_error(tmp_path):
    with pytest.raises(UserError, match="train.lr must be > 0"):
        budgetlm.pretrain(train=tmp_path / "t.txt", out=tmp_path / "pt", overrides={"train.lr": -1})
    with pytest.raises(UserError, match="no preset named|config file not found"):
        budgetlm.finetune(model=tmp_path, config="no-such-preset", out=tmp_path / "ft")


def test_importing_budgetlm_imports_no_command():
    code = ("import sys, budgetlm; print(budgetlm.__version__, 'budgetlm.api' in sys.modules, "
            "'budgetlm.cli' in sys.modules, 'torch' in sys.modules, callable(budgetlm.export))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == [budgetlm.__version__, "False", "False", "False", "True"]
    with pytest.raises(AttributeError, match="no attribute 'pretrian'"):
        budgetlm.pretrian  # noqa: B018
