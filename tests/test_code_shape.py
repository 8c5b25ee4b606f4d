"""The shape of the code (issue #22): no import cycle among budgetlm modules, no function over 80 lines.

Both read the source with `ast`; nothing is imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "budgetlm"
MAX_FUNCTION_LINES = 80

# "path::function" -> why it may be longer for now. Each entry is someone's open work; the list should end empty.
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {}  # "path::function": the stated reason it is longer


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__.py)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _import_time_nodes(tree: ast.Module, deferred: bool = False):
    """The statements Python runs when it imports the module: module level and class bodies, including `if`/`try`
    blocks, but not `if TYPE_CHECKING:` blocks (annotations only). With `deferred`, function bodies too: an import
    there runs on the first call, which hides a cycle from the interpreter but not from a reader."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and not deferred:
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
        for handler in getattr(node, "handlers", []):
            todo.extend(handler.body)


def _imported(node: ast.stmt, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The budgetlm modules whose names an import statement needs: `import a.b.c` and `from a.b import c` (c a
    submodule) need a.b.c; `from a.b import name` needs a.b. The packages above a module also run on its first
    import, but a package is in sys.modules before its body runs, so a submodule importing a sibling module
    (not a name of the package) is not a cycle; those edges are left out."""
    if isinstance(node, ast.Import):
        targets = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        targets = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}
    return (targets & known) - {module}


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = set()
        for node in _import_time_nodes(tree, deferred):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name] |= _imported(node, name, path.name == "__init__.py", known)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), as a path a -> b -> ... -> a."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(set(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first search back to it)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a strongly connected component without a cycle")


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles among budgetlm modules:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_import_cycle_through_function_bodies():
    """A deferred import (inside a function) may keep a heavy module off the import path, not break a cycle:
    modules form layers, and a module below never reaches back up, even on call."""
    cycles = find_cycles(import_graph(deferred=True))
    assert not cycles, "import cycles among budgetlm modules, counting imports inside functions " \
        "(move the shared piece into a module both can import):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_cycle_finder_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("source, module, is_package, expected", [
    ("import budgetlm.models.layers", "budgetlm.x", False, {"budgetlm.models.layers"}),
    ("from budgetlm.models import layers, Model", "budgetlm.x", False, {"budgetlm.models.layers", "budgetlm.models"}),
    ("from .layers import Block", "budgetlm.models.decoder", False, {"budgetlm.models.layers"}),
    ("from . import layers", "budgetlm.models", True, {"budgetlm.models.layers"}),
    ("from ..config import ModelConfig", "budgetlm.models.decoder", False, {"budgetlm.config"}),
    ("import torch", "budgetlm.x", False, set()),
])
def test_imported_modules(source, module, is_package, expected):
    known = {"budgetlm", "budgetlm.config", "budgetlm.models", "budgetlm.models.layers", "budgetlm.x"}
    assert _imported(ast.parse(source).body[0], module, is_package, known) == expected


def test_imports_inside_functions_and_type_checking_do_not_count():
    tree = ast.parse("import a\nif TYPE_CHECKING:\n    import b\ntry:\n    import c\nexcept ImportError:\n"
                     "    import d\ndef f():\n    import e\nclass C:\n    import g\n")
    names = {a.name for n in _import_time_nodes(tree) if isinstance(n, ast.Import) for a in n.names}
    assert names == {"a", "c", "d", "g"}


def long_functions() -> dict[str, int]:
    """"path::qualified.name" -> lines (def to last line, docstring included) of every function over the limit."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        todo = [(node, "") for node in tree.body]
        while todo:
            node, prefix = todo.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + node.name
                lines = node.end_lineno - node.lineno + 1
                if not isinstance(node, ast.ClassDef) and lines > MAX_FUNCTION_LINES:
                    found[f"{rel}::{name}"] = lines
                todo.extend((child, name + ".") for child in node.body)
            else:
                todo.extend((child, prefix) for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return found


def test_no_long_functions():
    long = long_functions()
    over = {k: v for k, v in long.items() if k not in LONG_FUNCTIONS_ALLOWED}
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines (split them into named pieces):\n" + \
        "\n".join(f"  {k}: {v} lines" for k, v in sorted(over.items()))


def test_long_function_allow_list_is_current():
    """An allowed function that is gone or short again leaves the list, so the list only shrinks."""
    stale = sorted(set(LONG_FUNCTIONS_ALLOWED) - set(long_functions()))
    assert not stale, f"no longer over {MAX_FUNCTION_LINES} lines (or gone); remove from LONG_FUNCTIONS_ALLOWED: {stale}"
