"""Size limits of ``feishu_vc_async``: modules a reader can hold, functions that fit a screen.

* no module over ``MODULE_LINES`` lines (the emulator's pure data tables excepted, by
  the explicit list ``DATA_TABLES``);
* no function or method over ``FUNCTION_LINES`` lines (from its ``def`` line to its
  last, decorators not counted; a nested function counts within its parent and on its
  own);
* ``VCClient.__init__`` with at most ``INIT_PARAMS`` parameters besides ``self``.

Read from the source with ``ast``, nothing imported. Run it: ``python
tests/_size_limits.py`` prints every violation (exit 1) or a one-line summary.
``tests/test_architecture.py`` asserts there are none.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "feishu_vc_async"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MODULE_LINES = 450
FUNCTION_LINES = 80
INIT_PARAMS = 8
# The emulator's pure data tables (names, topics: no logic to split), exempt from the
# module limit only, by path relative to the package. None is over it today; one that
# grows past it is added here by name, not by a pattern.
DATA_TABLES: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function in ``tree`` with its dotted name (Class.method, outer.inner)."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                found.append((name, child))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _parameters(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = func.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return [n for n in names if n not in ("self", "cls")]


def check(root: Path = ROOT) -> tuple[list[Violation], int, int]:
    """(violations, modules read, functions read)."""
    violations: list[Violation] = []
    modules = functions = 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        shown = f"{PACKAGE}/{rel}"
        source = path.read_text(encoding="utf-8")
        modules += 1
        lines = len(source.splitlines())
        if lines > MODULE_LINES and rel not in DATA_TABLES:
            violations.append(
                Violation(shown, 1, f"module has {lines} lines (limit {MODULE_LINES})")
            )
        tree = ast.parse(source, str(path))
        for name, func in _functions(tree):
            functions += 1
            end = func.end_lineno or func.lineno
            length = end - func.lineno + 1
            if length > FUNCTION_LINES:
                violations.append(
                    Violation(
                        shown,
                        func.lineno,
                        f"{name} has {length} lines (limit {FUNCTION_LINES})",
                    )
                )
            if rel == "client.py" and name == "VCClient.__init__":
                params = _parameters(func)
                if len(params) > INIT_PARAMS:
                    violations.append(
                        Violation(
                            shown,
                            func.lineno,
                            f"VCClient.__init__ takes {len(params)} parameters besides "
                            f"self (limit {INIT_PARAMS}): {', '.join(params)}",
                        )
                    )
    return violations, modules, functions


def main() -> int:
    violations, modules, functions = check()
    for violation in violations:
        print(violation)
    if violations:
        print(f"{len(violations)} violation(s)")
        return 1
    print(
        f"within limits: {modules} modules (<= {MODULE_LINES} lines), {functions} functions "
        f"(<= {FUNCTION_LINES} lines), VCClient.__init__ <= {INIT_PARAMS} parameters"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
