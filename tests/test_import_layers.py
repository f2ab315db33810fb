"""The first-party import graph: no cycles (function-level imports included) and data flowing one way.

Read from the source with `ast`, not by importing, so a lazy import inside a function counts as much as
one at the top: a cycle that only bites at call time is still a cycle for the next reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data_prep", "tfmodels", "serving", "bench")
TOP_MODULES = ("textclf",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {name: ROOT / f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """First-party modules a module imports anywhere in its body: `from a import b` names a.b if that
    is a module, else a."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in candidates:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
                if isinstance(node, ast.ImportFrom):
                    break  # `from a import b`: a.b if a module, else a; not both
    return out


def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {
        name: _imported(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", known)
        for name, path in sources.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_first_party_modules_import_one_another_without_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_function_level_cycle() -> None:
    tree_a = ast.parse("def f():\n    from pkg import b\n")
    tree_b = ast.parse("import pkg.a\n")
    known = {"pkg", "pkg.a", "pkg.b"}
    graph = {"pkg.a": _imported(tree_a, "pkg.a", False, known), "pkg.b": _imported(tree_b, "pkg.b", False, known)}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def _prefix(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# importer prefix -> first-party prefixes it must never import (data flows data_prep -> tfmodels -> serving)
FORBIDDEN = {
    "data_prep": ("tfmodels", "serving", "bench", "textclf"),
    "serving": ("tfmodels", "bench", "textclf"),
    "tfmodels": ("serving.gateway", "serving.model_server", "bench", "textclf"),
}


@pytest.mark.parametrize("importer", sorted(FORBIDDEN))
def test_data_flows_one_way(importer: str) -> None:
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if _prefix(module, (importer,))
        for target in targets
        if _prefix(target, FORBIDDEN[importer])
    )
    assert wrong == []
