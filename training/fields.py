"""A training setting is declared once: a dataclass field with its default, a one-line help, the command-line
names it has always answered to, and its name among TRL's arguments (TRL keeps each trainer's settings in one
config dataclass and derives its command line from it with ``HfArgumentParser``; this is the same idea).

Derived from these fields: the ``qmind train`` options (``scheduler/cli/options.py``), the trainer arguments
(``trl_args.trainer_arguments``), the docs' tables (``rows``) and a run's overrides (``with_paths``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

SAME = "="
"""``trl=SAME``: the setting is the TRL/transformers argument of the same name."""


def setting(default: Any, help: str, *, aliases: tuple[str, ...] = (), trl: str | None = SAME) -> Any:
    """A settings field. ``aliases``: further command-line declarations (click syntax, ``--4bit/--no-4bit`` for a
    switch); ``trl``: the trainer argument it becomes (``SAME``, another name, or None when it is not one)."""
    return dataclasses.field(default=default, metadata={"help": help, "aliases": tuple(aliases), "trl": trl})


@dataclasses.dataclass(frozen=True)
class Row:
    """One setting of a (possibly nested) settings class."""

    path: str
    """``learning_rate``, or ``lora.r`` inside a nested settings field."""
    default: Any
    kind: Any
    """The annotated type, ``None`` removed from an optional one (``int | None`` -> ``int``)."""
    help: str
    aliases: tuple[str, ...]
    trl: str | None
    """The trainer argument's name, or None."""


def _default(field: dataclasses.Field) -> Any:
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


def _plain(kind: Any) -> Any:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if type(None) in typing.get_args(kind) and len(args) == 1 else kind


def rows(cls: type, prefix: str = "") -> list[Row]:
    """Every setting of ``cls``, a nested settings field's settings as ``<field>.<name>``, in declaration order."""
    hints = typing.get_type_hints(cls)
    out: list[Row] = []
    for field in dataclasses.fields(cls):
        default = _default(field)
        if dataclasses.is_dataclass(default):
            out += rows(type(default), f"{prefix}{field.name}.")
            continue
        trl = field.metadata.get("trl", SAME)
        out.append(Row(prefix + field.name, default, _plain(hints[field.name]), field.metadata.get("help", ""),
                       field.metadata.get("aliases", ()), field.name if trl == SAME else trl))
    return out


def with_paths(settings: Any, values: Mapping[str, Any]) -> Any:
    """A copy of ``settings`` with ``values`` (path -> value, ``lora.r`` for a nested field) changed."""
    nested: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    for head, inner in nested.items():
        top[head] = with_paths(getattr(settings, head), inner)
    return dataclasses.replace(settings, **top)


class Settings:
    """What every settings dataclass here offers (mixed into the frozen dataclasses)."""

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (tuples as lists), for config.yaml."""
        return _plain_data(dataclasses.asdict(self))

    def with_overrides(self, **changes: Any) -> Any:
        """A copy with some fields changed; a dict for a nested settings field changes fields of it
        (``lora={"r": 8}``)."""
        for name, value in changes.items():
            if isinstance(value, dict) and dataclasses.is_dataclass(getattr(self, name)):
                changes[name] = dataclasses.replace(getattr(self, name), **value)
        return dataclasses.replace(self, **changes)


def _plain_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain_data(v) for k, v in value.items()}
    return [_plain_data(v) for v in value] if isinstance(value, (list, tuple)) else value


def help_table(cls: type) -> list[tuple[str, Any, str]]:
    """(path, default, help) of every setting (for the docs)."""
    return [(row.path, row.default, row.help) for row in rows(cls)]
