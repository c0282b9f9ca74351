"""Issue 17's size rules: no module over 400 lines, no function over 60 lines, outside migrations.

Prints one line per offender (``path: N lines`` for a module, ``path:LINE name(): N lines`` for a function or
method, measured from its ``def`` to its last line) and exits 1 when there is any; ``--json`` prints them as one
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
    found = check(args.root)
    if args.json:
        print(json.dumps({"modules": [dataclasses.asdict(o) for o in found if not o.name],
                          "functions": [dataclasses.asdict(o) for o in found if o.name],
                          "limits": {"module": MAX_MODULE_LINES, "function": MAX_FUNCTION_LINES}}))
    else:
        for offender in found:
            print(offender)
        print(f"{len(found)} offender(s)" if found else "no module or function over its limit")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
