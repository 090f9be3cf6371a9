"""Option values turned into Python values without pydantic, so a command starts in a fraction of the time.

typer 0.2x coerces every command-line value through a pydantic
``TypeAdapter``: the first value parsed imports pydantic (with its plugin
scan of every installed package's entry points) and builds one adapter per
option, about 0.1 s on every ``trainguard analyze``, more than the analysis
of a small run takes. Our options are plain: ``str``, ``int``, ``float``,
``bool``, ``Path``, an ``Enum`` of choices, ``X | None`` and ``list[X]`` of
those. :func:`plain_coercion` gives each such option a coercion that does
what typer's adapter does for it (same choice matching and path checks, via
typer's own helpers) and leaves every other option to typer. On a typer
without this machinery (older releases coerce through click types) it does
nothing.
"""

from __future__ import annotations

import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"", "0", "off", "f", "false", "n", "no"})


def _leaf(annotation: Any, info: Any) -> Any:
    """A function (value, param, ctx) -> value for one non-list annotation, or None to leave it to typer."""
    from typer._click.exceptions import BadParameter
    from typer._param_types import coerce_cli_choice, coerce_cli_path

    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return None
    if annotation is str:
        return lambda v, param, ctx: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    if annotation is bool:

        def as_bool(v: Any, param: Any, ctx: Any) -> bool:
            if isinstance(v, bool):
                return v
            s = str(v).strip().lower()
            if s in _TRUE or s in _FALSE:
                return s in _TRUE
            raise BadParameter(f"{v!r} is not a valid boolean.", ctx=ctx, param=param)

        return as_bool
    if annotation in (int, float):
        lo, hi, clamp = info.min, info.max, info.clamp

        def as_number(v: Any, param: Any, ctx: Any) -> Any:
            if isinstance(v, annotation) and not isinstance(v, bool):
                x = v
            else:
                try:
                    x = annotation(str(v).strip())
                except ValueError:
                    kind = "integer" if annotation is int else "number"
                    raise BadParameter(f"{v!r} is not a valid {kind}.", ctx=ctx, param=param) from None
            if lo is not None and x < lo:
                if not clamp:
                    raise BadParameter(f"{x} is below the smallest allowed value, {lo}.", ctx=ctx, param=param)
                x = annotation(lo)
            if hi is not None and x > hi:
                if not clamp:
                    raise BadParameter(f"{x} is above the largest allowed value, {hi}.", ctx=ctx, param=param)
                x = annotation(hi)
            return x

        return as_number
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        choices, case = tuple(annotation), info.case_sensitive

        def as_choice(v: Any, param: Any, ctx: Any) -> Any:
            try:
                return coerce_cli_choice(v, choices=choices, case_sensitive=case, ctx=ctx)
            except ValueError as e:
                raise BadParameter(str(e), ctx=ctx, param=param) from None

        return as_choice
    if annotation is Path and info.path_type in (None, Path):

        def as_path(v: Any, param: Any, ctx: Any) -> Any:
            # a Path already: typer's helper then skips its own pydantic adapter and only checks
            return coerce_cli_path(v if isinstance(v, Path) else Path(v), info, path_type=Path, param=param, ctx=ctx)

        return as_path
    return None


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _plain_class() -> Any:
    """The RuntimeParam subclass doing our coercion, or None on a typer without that machinery."""
    global _PLAIN
    if _PLAIN is not None:
        return _PLAIN
    try:
        from typer._coercion import RuntimeParam
    except ImportError:  # typer before the pydantic coercion: nothing to replace
        return None

    class _Plain(RuntimeParam):  # type: ignore[misc]
        def __init__(self, base: Any, fn: Any, many: bool) -> None:
            object.__setattr__(self, "parameter_info", base.parameter_info)
            object.__setattr__(self, "annotation", base.annotation)
            object.__setattr__(self, "_fn", fn)
            object.__setattr__(self, "_many", many)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self._many:  # type: ignore[attr-defined]
                items = value if isinstance(value, (list, tuple)) else [value]
                return [self._fn(v, param, ctx) for v in items]  # type: ignore[attr-defined]
            return self._fn(value, param, ctx)  # type: ignore[attr-defined]

    _PLAIN = _Plain
    return _PLAIN


_PLAIN: Any = None


def plain_param(param: Any) -> bool:
    """Give one typer option or argument a pydantic-free coercion when its type is plain; True when done."""
    desc = getattr(param, "type_descriptor", None)
    if desc is None or getattr(param, "_runtime_param", 1) is not None or desc.file_annotation is not None:
        return False
    cls = _plain_class()
    if cls is None:
        return False
    ann = _strip_optional(desc.annotation)
    many = typing.get_origin(ann) is list
    if many:
        ann = typing.get_args(ann)[0] if typing.get_args(ann) else str
    fn = _leaf(ann, desc.parameter_info)
    if fn is None:
        return False
    param._runtime_param = cls(desc, fn, many)
    return True


def plain_help(command: Any) -> None:
    """typer builds each command's ``--help`` option on demand, as a bool option coerced like the rest: plain it too."""
    build = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = build(ctx)
        if option is not None:
            plain_param(option)
        return option

    command.get_help_option = get_help_option


def plain_coercion(command: Any) -> int:
    """Give every plain option of ``command`` (and of its subcommands) a pydantic-free coercion; returns how many."""
    done = 0
    for cmd in [command, *getattr(command, "commands", {}).values()]:
        plain_help(cmd)
        done += sum(plain_param(p) for p in getattr(cmd, "params", ()))
    return done
