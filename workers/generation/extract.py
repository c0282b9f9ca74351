"""Code extraction from a model's completion. Never executes anything: ``ast.parse`` only.

A completion may hold fenced blocks (```python ... ```), a block whose closing fence the stop sequence "```\\n" cut
off, bare code, or code wrapped in prose. The chosen module is the one that defines ``create_ansatz`` at top level
(the last such block when there are several: models tend to put their corrected version last). The caller keeps
the raw completion beside the result.
"""

from __future__ import annotations

import ast
import dataclasses
import re

FUNCTION = "create_ansatz"
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*$", re.MULTILINE)
_CODE_LANGS = {"", "python", "py", "python3", "py3", "ipython", "pycon"}
_CODE_START = re.compile(r"^(from\s+\w|import\s+\w|def\s+\w|class\s+\w|@\w|#|\w+\s*=)")
_DEF_RE = re.compile(rf"^\s*def\s+{FUNCTION}\s*\(", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Extraction:
    """What came out of one completion."""

    code: str | None
    """The module that defines create_ansatz, or None."""
    error: str | None
    """Why nothing was extracted (None when code was found)."""
    source: str = ""
    """fenced, unterminated-fence or bare: where the code came from."""

    def __iter__(self):
        """``code, error = extract_code(text)``."""
        return iter((self.code, self.error))


def _blocks(text: str) -> list[tuple[str, str, bool]]:
    """(language, body, closed) for each fenced block, in order; an unclosed last fence runs to the end."""
    blocks = []
    pos = 0
    while True:
        opening = _FENCE.search(text, pos)
        if opening is None:
            break
        fence, lang = opening.group(1), opening.group(2).lower()
        start = opening.end() + 1
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE)
        end = closing.search(text, start)
        if end is None:
            blocks.append((lang, text[start:], False))
            break
        blocks.append((lang, text[start:end.start()], True))
        pos = end.end()
    return blocks


def _defines(tree: ast.Module) -> bool:
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == FUNCTION
               for node in tree.body)


def _parse(code: str) -> tuple[ast.Module | None, SyntaxError | None]:
    try:
        return ast.parse(code), None
    except SyntaxError as exc:
        return None, exc
    except ValueError as exc:  # null bytes
        return None, SyntaxError(str(exc))


def _clean(code: str) -> str:
    return code.strip("\n").rstrip() + "\n"


def _syntax_message(exc: SyntaxError, where: str) -> str:
    line = f" at line {exc.lineno}" if exc.lineno else ""
    return f"the {where} defining {FUNCTION} has a syntax error{line}: {exc.msg}"


def _from_bare(text: str) -> tuple[str | None, str | None]:
    """Code without fences: drop prose lines before the first code-looking line and after the code."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line)]
    if not starts:
        return None, None
    first = starts[0]
    last_error: SyntaxError | None = None
    for end in range(len(lines), first, -1):
        candidate = "\n".join(lines[first:end])
        if not candidate.strip():
            continue
        tree, err = _parse(candidate)
        if tree is not None:
            if _defines(tree):
                return _clean(candidate), None
            return None, None
        if last_error is None:
            last_error = err
    if last_error is not None and _DEF_RE.search("\n".join(lines[first:])):
        return None, _syntax_message(last_error, "code")
    return None, None


def extract_code(completion: str) -> Extraction:
    """The module defining ``create_ansatz`` in ``completion``, or None with a message saying what was wrong."""
    if completion is None or not completion.strip():
        return Extraction(None, "the completion is empty; expected Python code defining "
                                f"{FUNCTION}(num_qubits) -> QuantumCircuit")
    text = completion.replace("\r\n", "\n")
    blocks = _blocks(text)
    errors: list[str] = []
    found: list[tuple[str, str]] = []
    for lang, body, closed in blocks:
        if lang not in _CODE_LANGS and not _DEF_RE.search(body):
            continue
        where = "code block" if closed else "unterminated code block"
        tree, err = _parse(body)
        if tree is None:
            if _DEF_RE.search(body):
                msg = _syntax_message(err, where)
                if not closed:
                    msg += (" (the completion ended inside the block: a stop sequence or max_new_tokens may have "
                            "cut it)")
                errors.append(msg)
            continue
        if _defines(tree):
            found.append((_clean(body), "fenced" if closed else "unterminated-fence"))
    if found:
        code, source = found[-1]
        return Extraction(code, None, source)
    if errors:
        return Extraction(None, errors[-1])
    if not blocks:
        code, err = _from_bare(text)
        if code is not None:
            return Extraction(code, None, "bare")
        if err is not None:
            return Extraction(None, err)
    hint = ""
    if not _DEF_RE.search(text):
        lines = text.strip().count("\n") + 1
        hint = (f"; the completion ({lines} line{'s' if lines != 1 else ''}) never reaches 'def {FUNCTION}(' — a "
                f"stop sequence or max_new_tokens may have cut it before the function")
    return Extraction(None, f"no top-level function {FUNCTION} found in the completion{hint}; expected a Python "
                            f"module defining {FUNCTION}(num_qubits: int) -> QuantumCircuit")
