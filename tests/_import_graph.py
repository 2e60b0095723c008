"""The import graph of ``feishu_vc_async``, read from the source, and its cycles.

Every ``import`` counts, wherever it stands (module level, inside a function, under
``TYPE_CHECKING``): a cycle hidden in a function is still two modules that cannot be
understood one without the other. Importing ``a.b.c`` also imports the packages ``a.b``
and ``a`` on the way, so those count too, except the packages that contain the importing
module (Python is already importing them when it gets there).

Run it: ``python tests/_import_graph.py`` prints every cycle (exit 1) or "no cycles"
with the size of the graph. ``tests/test_architecture.py`` asserts there are none.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "feishu_vc_async"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name → file, ``__init__.py`` named after its package."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_package(name: str, known: dict[str, Path]) -> bool:
    return name in known and known[name].name == "__init__.py"


def _targets(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    package = module if _is_package(module, known) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # `from pkg import submodule`
                yield f"{target}.{alias.name}"


def graph(known: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module → the package modules it imports (directly, or as a package on the way)."""
    known = modules() if known is None else known
    edges: dict[str, set[str]] = {name: set() for name in known}
    for module, path in known.items():
        for target in _targets(module, path, known):
            if target not in known:
                continue
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                step = ".".join(parts[:i])
                contains_importer = module == step or module.startswith(step + ".")
                if step in known and step != module and not contains_importer:
                    edges[module].add(step)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def main() -> int:
    edges = graph()
    found = cycles(edges)
    for component in found:
        print("cycle:", " <-> ".join(component))
    if not found:
        count = sum(len(targets) for targets in edges.values())
        print(f"no cycles: {len(edges)} modules, {count} imports among them")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
