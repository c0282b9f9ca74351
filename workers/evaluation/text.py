"""The one cleaner for text that came from a candidate (messages, gate names, stdout, tracebacks).

Candidate-derived text reaches the store, the CLI, logs and the next prompt's memory context (a model reading its
own failures is a prompt-injection path). ``clean_text`` makes it safe for all of them: ANSI/VT escape sequences
and control characters (everything but newline and tab) are removed, invalid surrogates replaced, and the result
is capped at ``MAX_TEXT_CHARS`` characters (2,000) with a marker that says how much was cut.
"""

from __future__ import annotations

import re

MAX_TEXT_CHARS = 2000
"""Longest candidate-derived string kept anywhere (per message)."""
MAX_NAME_CHARS = 64
"""Longest gate or Parameter name quoted inside a message."""
# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-character escapes, and the 8-bit CSI.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_text(value: object, limit: int = MAX_TEXT_CHARS, *, keep: str = "head") -> str:
    """``value`` as printable text of at most ``limit`` characters (plus a short marker when cut).

    ``keep="tail"`` keeps the end instead (tracebacks end with the error). Never raises."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - a hostile __str__
        text = f"<unprintable {type(value).__name__}>"
    dropped = max(0, len(text) - (8 * limit + 1024))
    if dropped:  # bound the regex work before cleaning
        text = text[dropped:] if keep == "tail" else text[:8 * limit + 1024]
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = _CONTROL.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))
    if len(text) <= limit and not dropped:
        return text
    cut = len(text) - min(limit, len(text)) + dropped
    limit = min(limit, len(text))
    if keep == "tail":
        return f"[... {cut} characters cut] " + text[-limit:]
    return text[:limit] + f" [... {cut} characters cut]"


def clean_name(value: object) -> str:
    """A gate or Parameter name for a message: cleaned and capped at ``MAX_NAME_CHARS``."""
    return clean_text(value, MAX_NAME_CHARS)


def clean_all(values) -> tuple[str, ...]:
    """Every message cleaned, and the list itself capped: at most 20 messages."""
    items = [clean_text(v) for v in list(values)[:20]]
    return tuple(items)
