"""Issue 17's layout rules: no module over 400 lines, no function over 60 lines (outside migrations), and no import
circle between two of the project's modules (tests left out).

Prints one line per offender (``path: N lines`` for a module, ``path:LINE name(): N lines`` for a function or
method, measured from its ``def`` to its last line; ``circle: a.py -> b.py -> a.py`` for imports that run in a
circle, those inside functions included) and exits 1 when there is any; ``--json`` prints them as one
object. Reads the Python files git tracks (plus untracked ones it does not ignore) below ``--root``, or every
``.py`` file there outside a git checkout.

    python scripts/check_layout.py            # the repository this script lives in
    python scripts/check_layout.py --json --root /path/to/checkout
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import pathlib
import subprocess
import sys

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
EXEMPT = ("db/migrations/",)
"""Path prefixes the rules do not apply to (Alembic migrations are written once and never edited)."""


@dataclasses.dataclass(frozen=True)
class Offender:
    path: str
    """Relative to the root, with forward slashes."""
    lines: int
    name: str = ""
    """The function (``Class.method`` for a method); empty for a module."""
    line: int = 0
    """Where the function's ``def`` stands; 0 for a module."""

    def __str__(self) -> str:
        if not self.name:
            return f"{self.path}: {self.lines} lines (module limit {MAX_MODULE_LINES})"
        return f"{self.path}:{self.line} {self.name}(): {self.lines} lines (function limit {MAX_FUNCTION_LINES})"


def python_files(root: pathlib.Path) -> list[str]:
    """Relative paths of the Python files below ``root`` that the rules cover."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.py"],
                             cwd=root, capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        out = [p.relative_to(root).as_posix() for p in root.rglob("*.py")]
    return sorted(p for p in out if p and not p.startswith(EXEMPT) and (root / p).is_file())


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")


def offenders_in(root: pathlib.Path, path: str) -> list[Offender]:
    text = (root / path).read_text(encoding="utf-8", errors="replace")
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(Offender(path, lines))
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError:  # deliberately broken test data (hostile programs): only its length counts
        return found
    for name, node in _functions(tree):
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > MAX_FUNCTION_LINES:
            found.append(Offender(path, length, name, node.lineno))
    return found


def _imports(root: pathlib.Path, path: str) -> set[str]:
    """The project modules (as relative file paths, packages' ``__init__.py`` left out) that ``path`` imports,
    anywhere in it (lazy imports inside functions count: they close a circle just the same)."""
    try:
        tree = ast.parse((root / path).read_text(encoding="utf-8", errors="replace"), filename=path)
    except SyntaxError:
        return set()
    package = pathlib.PurePosixPath(path).parent.parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            base += node.module.split(".") if node.module else []
            targets = [base + [alias.name] for alias in node.names] + [base]
        else:
            continue
        for parts in targets:
            candidate = "/".join(parts) + ".py"
            if parts and (root / candidate).is_file():
                found.add(candidate)
    return found - {path}


def import_circles(root: pathlib.Path) -> list[list[str]]:
    """Groups of modules that import each other in a circle (strongly connected, more than one module), each
    sorted; tests, migrations and ``__init__.py`` re-exports are left out."""
    files = [p for p in python_files(root) if not p.startswith("tests/") and not p.endswith("__init__.py")]
    graph = {p: _imports(root, p) & set(files) for p in files}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                circles.append(sorted([*group, v]))

    for v in files:
        if v not in index:
            visit(v)
    return sorted(circles)


def check(root: pathlib.Path) -> list[Offender]:
    """Every offender below ``root``: modules first, then functions, each in path order."""
    found = [o for p in python_files(root) for o in offenders_in(root, p)]
    return sorted(found, key=lambda o: (bool(o.name), o.path, o.line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent,
                        help="the checkout to read (default: this script's repository)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = parser.parse_args(argv)
    found, circles = check(args.root), import_circles(args.root)
    if args.json:
        print(json.dumps({"modules": [dataclasses.asdict(o) for o in found if not o.name],
                          "functions": [dataclasses.asdict(o) for o in found if o.name], "circles": circles,
                          "limits": {"module": MAX_MODULE_LINES, "function": MAX_FUNCTION_LINES}}))
    else:
        for offender in found:
            print(offender)
        for circle in circles:
            print("circle: " + " -> ".join([*circle, circle[0]]))
        print(f"{len(found)} offender(s), {len(circles)} import circle(s)" if found or circles
              else "no module or function over its limit, no import circle")
    return 1 if found or circles else 0


if __name__ == "__main__":
    sys.exit(main())
