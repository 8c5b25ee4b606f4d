"""bench/ stays runnable: every script imports (doing nothing at import), answers --help, and uses budgetlm only
through public names, so an internal rename that breaks a benchmark fails here rather than months later.

One child process does it all (torch and transformers are imported once): with bench/ first on sys.path, as
`python bench/X.py` puts it, it imports each module, then runs each script as __main__ with `--help`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py"))
HELPER = "common"  # the shared helper module: imported, but not a script
# `from budgetlm.x import a, b` anywhere in a script, child-process code in strings included
BUDGETLM_IMPORT = re.compile(r"from (budgetlm(?:\.\w+)*) import \(?([\w, ]+)")  # names may end in " as x"

CHILD = r"""
import contextlib, importlib, io, json, runpy, sys
bench, names = sys.argv[1], sys.argv[2:]
sys.path.insert(0, bench)
report = {}
for name in names:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        importlib.import_module(name)
    row = {"import_output": out.getvalue()}
    if name != "common":
        out, code = io.StringIO(), "no SystemExit"
        sys.argv = [f"{bench}/{name}.py", "--help"]
        with contextlib.redirect_stdout(out):
            try:
                runpy.run_path(f"{bench}/{name}.py", run_name="__main__")
            except SystemExit as e:
                code = e.code
        row.update(help_exit=code, help=out.getvalue())
    report[name] = row
print(json.dumps(report))
"""


def test_every_bench_script_imports_quietly_and_answers_help():
    assert HELPER in SCRIPTS and len(SCRIPTS) > 10, SCRIPTS
    no_parser = [n for n in SCRIPTS if n != HELPER and "argparse" not in (BENCH / f"{n}.py").read_text()]
    assert not no_parser, f"give these scripts an argparse parser so --help is safe to run: {no_parser}"
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(BENCH), *SCRIPTS], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(report) == SCRIPTS
    for name, row in report.items():
        assert row["import_output"] == "", f"importing bench/{name}.py printed: {row['import_output'][:500]}"
        if name != HELPER:
            assert row["help_exit"] == 0, f"bench/{name}.py --help exited with {row['help_exit']}"
            assert row["help"].startswith("usage:"), f"bench/{name}.py --help printed: {row['help'][:500]}"


def test_bench_uses_only_public_budgetlm_names():
    problems = []
    for name in SCRIPTS:
        text = (BENCH / f"{name}.py").read_text()
        if re.search(r"budgetlm(?:\.\w+)*\._", text):
            problems.append(f"{name}.py: a private budgetlm module or attribute")
        for module, names in BUDGETLM_IMPORT.findall(text):
            mod = importlib.import_module(module)
            for imported in (n.split(" as ")[0].strip() for n in names.split(",") if n.strip()):
                if imported.startswith("_"):
                    problems.append(f"{name}.py: from {module} import {imported} (private)")
                elif not hasattr(mod, imported) and not (hasattr(mod, "__path__")  # a submodule of a package
                                                         and importlib.util.find_spec(f"{module}.{imported}")):
                    problems.append(f"{name}.py: from {module} import {imported} (no such name)")
    assert not problems, "\n".join(problems)
