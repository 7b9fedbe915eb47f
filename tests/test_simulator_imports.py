"""The simulator's modules import one another without a cycle.

Importing each module in a fresh interpreter cannot show a cycle: an import hidden in a function,
or one Python happens to resolve in a lucky order, passes. So this reads the source instead: every
``import`` of a ``simulator`` module, at module level, under ``if TYPE_CHECKING:`` or inside a
function, is an edge; ``from simulator import name`` is resolved through ``simulator/__init__.py``
to the module that defines ``name``; relative imports are resolved too. The graph must be acyclic.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "simulator"


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` (under ``root``) by dotted name; a package is its __init__."""
    found: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The dotted name a ``from ... import`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _is_package(module: str, modules: dict[str, Path]) -> bool:
    return modules[module].name == "__init__.py"


def _resolve(target: str, name: str, modules: dict[str, Path], seen: frozenset[str]) -> str:
    """The module ``from target import name`` depends on: the submodule ``name`` of a package,
    or, for a name a package's __init__ imports from one of its modules, that module (followed
    through further packages); otherwise ``target`` itself."""
    if f"{target}.{name}" in modules:
        return f"{target}.{name}"
    if not _is_package(target, modules) or target in seen:
        return target
    for node in ast.walk(ast.parse(modules[target].read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            if (alias.asname or alias.name) == name:
                source = _absolute(node, target, is_package=True)
                if source in modules and source != target:
                    return _resolve(source, alias.name, modules, seen | {target})
    return target


def import_graph(
    root: Path, package: str, nodes: Callable[[ast.AST], Iterable[ast.AST]] = ast.walk
) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of ``package`` it imports, anywhere in it
    (``nodes``: which parts of a module to read; all of it by default)."""
    modules = _modules(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        is_package = _is_package(module, modules)
        for node in nodes(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    # ``import a.b.c`` runs a, a.b and a.b.c
                    parts = alias.name.split(".")
                    for n in range(1, len(parts) + 1):
                        name = ".".join(parts[:n])
                        if name in modules:
                            edges.add(name)
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(node, module, is_package)
                if target not in modules:
                    continue
                for alias in node.names:
                    edges.add(_resolve(target, alias.name, modules, frozenset()))
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_simulator_imports_have_no_cycle() -> None:
    graph = import_graph(ROOT, PACKAGE)
    assert "simulator.rds" in graph
    assert "simulator.dynamodb" in graph
    cycle = find_cycle(graph)
    edges = "\n".join(f"  {m} -> {', '.join(sorted(e)) or '-'}" for m, e in sorted(graph.items()))
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}\nimport graph:\n{edges}"


def test_rds_and_dynamodb_meet_only_in_world() -> None:
    """The RDS part and the DynamoDB part share ``simulator.world``, not each other."""
    graph = import_graph(ROOT, PACKAGE)
    assert "simulator.world" in graph["simulator.rds"]
    assert "simulator.world" in graph["simulator.dynamodb"]
    assert "simulator.dynamodb" not in graph["simulator.rds"]
    assert "simulator.rds" not in graph["simulator.dynamodb"]
    assert not graph["simulator.world"] & {"simulator.rds", "simulator.dynamodb"}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        pytest.param(
            {
                "pkg/__init__.py": "from pkg.a import A\n",
                "pkg/a.py": "def make():\n    from pkg.b import B\n    return B\nclass A: ...\n",
                "pkg/b.py": "from pkg import A\nclass B(A): ...\n",
            },
            ["pkg.a", "pkg.b", "pkg.a"],
            id="inside a function, and through the package",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from pkg.b import B\n",
                "pkg/b.py": "from . import a\n",
            },
            ["pkg.a", "pkg.b", "pkg.a"],
            id="under TYPE_CHECKING, and relative",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "from pkg.b import B\n",
                "pkg/a.py": "from pkg import B\n",
                "pkg/b.py": "from .c import C\nclass B: ...\n",
                "pkg/c.py": "import os\nclass C: ...\n",
            },
            None,
            id="acyclic",
        ),
    ],
)
def test_the_check_sees_cycles(
    tmp_path: Path, files: dict[str, str], cycle: list[str] | None
) -> None:
    _write(tmp_path, files)
    assert find_cycle(import_graph(tmp_path, "pkg")) == cycle
