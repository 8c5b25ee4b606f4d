"""The package works outside the checkout (issue 23): build the wheel, install it into a fresh virtual environment,
and from a directory outside the repository run `budgetlm --help`, a fine-tune from a shipped preset, and
`budgetlm evaluate --help`.

The fresh environment gets no network: its only link to the test interpreter's environment is a .pth line naming
that environment's site-packages, so torch and the other dependencies resolve there (a path line in a .pth file
adds the folder, but the .pth files inside it, such as an editable install of this checkout, are not run). The
wheel is installed with --no-deps. PYTHONPATH is dropped from every child, so nothing can reach the checkout.
Deselect with `-m "not wheel"`.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from budgetlm.models import build_mlm_model
from budgetlm.models.io import model_meta, save_model
from budgetlm.version import __version__
from tests.test_cli import labelled_rows, write_tsv

pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "budgetlm"]  # what the build reads


def _run(argv: list, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or _env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{argv}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel built from this checkout installed in it; its bin/ folder."""
    d = tmp_path_factory.mktemp("wheel")
    src = d / "src"  # a copy, so the build's build/ and *.egg-info never land in the checkout
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", d / "dist", src], cwd=d)
    (wheel,) = (d / "dist").glob("budgetlm-*.whl")
    assert wheel.name == f"budgetlm-{__version__}-py3-none-any.whl"

    _run([sys.executable, "-m", "venv", "--without-pip", d / "venv"], cwd=d)
    python = d / "venv" / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=d).stdout.strip())
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "budgetlm-test-dependencies.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], cwd=d)
    return d / "venv" / "bin"


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A working directory outside the repository."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    assert REPO not in d.parents
    return d


def test_the_installed_package_is_not_the_checkout(venv, elsewhere):
    code = ("import json, budgetlm, budgetlm.config as c; print(json.dumps({'file': budgetlm.__file__, "
            "'version': budgetlm.__version__, 'presets': str(c.presets_dir()), 'names': c.preset_names()}))")
    found = json.loads(_run([venv / "python", "-c", code], cwd=elsewhere).stdout)
    installed = Path(found["file"]).resolve()
    assert venv.parent in installed.parents and REPO not in installed.parents
    assert found["version"] == __version__
    assert Path(found["presets"]).resolve() == installed.parent / "presets"
    assert found["names"] == sorted(p.stem for p in (REPO / "budgetlm" / "presets").glob("*.yaml"))


def test_help_runs_outside_the_repository(venv, elsewhere):
    out = _run([venv / "budgetlm", "--help"], cwd=elsewhere).stdout
    assert "pretrain" in out and "finetune" in out and "evaluate" in out
    out = _run([venv / "budgetlm", "evaluate", "--help"], cwd=elsewhere).stdout
    assert "--tasks" in out and "--seeds" in out


def test_a_preset_fine_tune_runs_from_the_installed_package(venv, elsewhere, tiny_model_config, tiny_tokenizer_file):
    model_dir = save_model(mlm := build_mlm_model(tiny_model_config()), elsewhere / "mlm", model_meta(mlm, "mlm"),
                           tiny_tokenizer_file)
    root = elsewhere / "data-root"  # the preset names the built-in SST-2: a tiny one stands in for it
    (root / "sst2").mkdir(parents=True)
    write_tsv(root / "sst2" / "train.tsv", labelled_rows(0, 16))
    write_tsv(root / "sst2" / "dev.tsv", labelled_rows(1, 8))
    env = _env(BUDGETLM_DATA=str(root), BUDGETLM_CACHE=str(elsewhere / "cache"))
    proc = _run([venv / "budgetlm", "finetune", "--model", model_dir, "--config", "sst2-finetune", "--budget", "3steps",
                 "--out", "runs/ft", "train.batch_size=4", "train.threads=1", "train.log_every=1"], cwd=elsewhere, env=env)
    results = json.loads((elsewhere / "runs" / "ft" / "results.json").read_text())
    assert results["steps"] == 3 and 0.0 <= results["accuracy"] <= 1.0, proc.stderr
    config = json.loads((elsewhere / "runs" / "ft" / "config.json").read_text())
    assert config["head"]["pooling"] == "mean" and config["train"]["lr"] == 3e-4  # the preset's, not the defaults
