"""Typer options generated from a settings dataclass (``training/fields.py``), in the manner of TRL's
``HfArgumentParser``: each field becomes ``--<field-name>`` (``--lora-<name>`` inside the nested LoRA settings),
with the field's help, its default shown, and the aliases it declares. Every option defaults to "not given", so a
run changes only the fields named on the command line; the command receives them as ``{path: value}``."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

import typer

from training.fields import Row, rows

from .common import usage_error

_SCALARS = (int, float, str, bool)


@dataclasses.dataclass(frozen=True)
class Flag:
    """One generated option."""

    row: Row
    name: str
    """The primary option name, ``--learning-rate``."""
    param: str
    """The Python parameter it fills (``lora__r`` for ``lora.r``)."""


def flag_name(path: str) -> str:
    """``learning_rate`` -> ``--learning-rate``; ``lora.r`` -> ``--lora-r``; ``lora.lora_alpha`` -> ``--lora-alpha``."""
    head, _, name = path.rpartition(".")
    if head and not name.startswith(f"{head}_"):
        name = f"{head}_{name}"
    return "--" + name.replace("_", "-")


def flags(cls: type) -> list[Flag]:
    return [Flag(row, flag_name(row.path), row.path.replace(".", "__")) for row in rows(cls)]


def shown_default(value: Any) -> str:
    """The default as ``--help`` shows it (a tuple comma-separated, as the option takes it)."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _option(flag: Flag) -> inspect.Parameter:
    row = flag.row
    kind = row.kind if row.kind in _SCALARS else str  # tuples: comma-separated text
    decls = (f"{flag.name}/--no-{flag.name[2:]}",) if kind is bool else (flag.name,)
    option = typer.Option(None, *decls, *row.aliases, help=row.help, show_default=shown_default(row.default))
    return inspect.Parameter(flag.param, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind | None)


def _value(flag: Flag, raw: Any) -> Any:
    """A tuple setting from its comma-separated text (items of the tuple's type); anything else as parsed."""
    if flag.row.kind in _SCALARS:
        return raw
    item = (typing.get_args(flag.row.kind) or (str,))[0]
    try:
        return tuple(item(part.strip()) for part in str(raw).split(",") if part.strip())
    except ValueError:
        what = "numbers" if item in (int, float) else "values"
        raise ValueError(f"{flag.name} must be comma-separated {what}, got {raw!r}") from None


def given_settings(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """``{path: value}`` of the settings of ``cls`` given on a parsed command line (``params``: parameter name ->
    value, None when not given); ``with_paths`` applies them."""
    return {f.row.path: _value(f, params[f.param]) for f in flags(cls) if params.get(f.param) is not None}


def settings_options(cls: type, *, into: str = "given") -> Callable:
    """Decorate a Typer command: every setting of ``cls`` becomes an option after the command's first parameter,
    and the command's ``into`` parameter receives the given ones as ``{path: value}``. A value that cannot be read
(``--temperatures hot``) is a usage error (exit 2; under ``--json`` a JSON object)."""
    generated = flags(cls)

    def decorate(fn: Callable) -> Callable:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != into]
        clash = {p.name for p in own} & {f.param for f in generated}
        if clash:
            raise TypeError(f"{fn.__name__} declares {sorted(clash)} itself and through {cls.__name__}")

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            try:
                given = given_settings(cls, kwargs)
            except ValueError as exc:
                usage_error(str(exc), as_json=bool(kwargs.get("as_json")))
            rest = {k: v for k, v in kwargs.items() if k not in {f.param for f in generated}}
            return fn(**rest, **{into: given})

        params = [own[0], *(_option(f) for f in generated), *own[1:]] if own else [_option(f) for f in generated]
        command.__signature__ = inspect.Signature(
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params])
        annotations = {k: v for k, v in fn.__annotations__.items() if k != into}
        command.__annotations__ = {**annotations, **{f.param: _option(f).annotation for f in generated}}
        return command

    return decorate
