"""One version string (budgetlm/version.py) and one license (LICENSE, Apache-2.0), as pyproject.toml says (issue 23)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import budgetlm
from budgetlm.version import __version__

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_written_once():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__) and budgetlm.__version__ == __version__
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "budgetlm.version.__version__"}
    written = [p for p in REPO.joinpath("budgetlm").rglob("*.py") if re.search(r"__version__\s*=", p.read_text())]
    assert written == [REPO / "budgetlm" / "version.py"]


def test_license_file_is_the_apache_2_license_pyproject_names():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text and "9. Accepting Warranty or Additional Liability." in text
    assert PYPROJECT["project"]["license"] == "Apache-2.0" and PYPROJECT["project"]["license-files"] == ["LICENSE"]
    # `license` as an SPDX string and `license-files` need setuptools >= 77 (PEP 639)
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]
