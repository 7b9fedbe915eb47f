"""The library's modules import one another without a cycle, at run time.

Every ``import`` that runs is an edge: at module level, or inside a function (an import hidden in
a function to dodge a cycle is still the cycle). ``from rds_force_ssl import name`` is resolved
through the package's ``__init__`` to the module that defines ``name``. Imports under ``if
TYPE_CHECKING:`` are not edges: they never run, and only name types for annotations.
(The simulator's own graph, TYPE_CHECKING imports included, is tests/test_simulator_imports.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_simulator_imports import find_cycle, import_graph

ROOT = Path(__file__).resolve().parent.parent / "constructs"
PACKAGE = "rds_force_ssl"


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except what sits under ``if TYPE_CHECKING:``."""
    found: list[ast.AST] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def runtime_graph(root: Path, package: str) -> dict[str, set[str]]:
    return import_graph(root, package, _runtime_nodes)


def test_the_library_imports_have_no_cycle() -> None:
    graph = runtime_graph(ROOT, PACKAGE)
    assert {"rds_force_ssl.force_ssl", "rds_force_ssl.cli.engines"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_lambda_code_imports_nothing_of_the_construct_or_the_cli() -> None:
    """handlers/ and facts/ are the Lambda asset: stdlib and boto3 only. The handlers import
    nothing of the library's CDK or CLI modules, only each other and facts/; facts/ imports
    nothing else of the library (the construct and the CLI import it too)."""
    graph = runtime_graph(ROOT, PACKAGE)
    assert "rds_force_ssl.facts.engines" in graph
    for module, edges in graph.items():
        if module.startswith("rds_force_ssl.handlers"):
            allowed = ("rds_force_ssl.handlers", "rds_force_ssl.facts")
            outside = {e for e in edges if not e.startswith(allowed)}
            assert outside == set(), (module, outside)
        if module.startswith("rds_force_ssl.facts"):
            outside = {e for e in edges if not e.startswith("rds_force_ssl.facts")}
            assert outside == set(), (module, outside)


def test_a_type_checking_import_is_no_edge_and_a_function_import_is(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n"
    )
    (pkg / "b.py").write_text("def f():\n    from pkg import a\n")
    graph = runtime_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == set()
    assert graph["pkg.b"] == {"pkg.a"}
    (pkg / "a.py").write_text("import pkg.b\n")
    assert find_cycle(runtime_graph(tmp_path, "pkg")) is not None
