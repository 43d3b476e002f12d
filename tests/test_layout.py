"""The layout rules of docs/architecture.md, checked on the source itself.

* no import cycle inside ``src/epcli``, counting imports inside functions;
* dependencies run one way: core <- io <- motifs <- model <- inference <- stages <- cli;
  stages never import each other (``epcli.train`` may use what ``epcli.evaluate`` does not);
* no module over 600 lines and no function over 80 lines of its own code (docstring and
  nested functions not counted), except where the function says ``# long because``;
* tests import public names only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import REPO

SRC = REPO / "src"
PACKAGE = SRC / "epcli"

#: Layer of each top-level room; a module may import only from its own room or lower layers.
LAYERS = {
    "core": 0,
    "io": 1,
    "motifs": 1,
    "model": 2,
    "inference": 3,
    "prepare": 4,
    "predict": 4,
    "adapt": 4,
    "explain": 4,
    "candidates": 4,
    "info": 4,
    "evaluate": 4,
    "train": 4,
    "cli": 5,
    "__main__": 6,
}
#: Stages of the same layer that one may use (the training run validates like evaluate).
STAGE_USES: dict[str, set[str]] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every epcli module ``name`` imports, at the top or inside functions."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("epcli"):
                out.add(t)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert strongly_connected(GRAPH) == []


def test_the_cycle_finder_finds_cycles():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def room(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_dependencies_run_one_way():
    bad = []
    for name, deps in GRAPH.items():
        r = room(name)
        if r == "__init__":
            continue
        for d in deps:
            rd = room(d)
            if rd in (r, "__init__"):
                continue  # the package root holds only __version__
            if LAYERS[rd] > LAYERS[r] or (
                LAYERS[rd] == LAYERS[r] and rd not in STAGE_USES.get(r, set())
            ):
                bad.append(f"{name} -> {d}")
    assert bad == []


def test_every_room_has_a_layer():
    assert {room(n) for n in MODULES} - {"__init__"} <= set(LAYERS)


def own_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's own code: docstring and nested functions left out."""
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return 0
    nested = [
        (n.lineno, n.end_lineno)
        for n in ast.walk(fn)
        if n is not fn and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return sum(
        1
        for line in range(body[0].lineno, fn.end_lineno + 1)
        if not any(a <= line <= b for a, b in nested)
    )


def test_module_and_function_sizes():
    too_long = []
    for name, path in MODULES.items():
        text = path.read_text()
        lines = text.splitlines()
        if len(lines) > 600 and "# long because" not in text.split("\n", 40)[-1]:
            too_long.append(f"{name}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                src = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                if own_lines(node) > 80 and "# long because" not in src:
                    too_long.append(f"{name}.{node.name}: {own_lines(node)} lines")
    assert too_long == []


TEST_FILES = sorted((REPO / "tests").glob("test_*.py")) + sorted(
    (REPO / "benchmarks" / "tests").glob("test_*.py")
)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_tests_import_public_names(path):
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in ("conftest", "tests"):
                bad.append(f"from {node.module}")
            if node.module.startswith("epcli"):
                bad += [a.name for a in node.names if a.name.startswith("_")]
    assert bad == []
