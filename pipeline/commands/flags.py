"""Command-line flags generated from a dataclass of training options: each option's default, type, choices
and help are stated once, on the dataclass field, and the flag and the library call cannot drift apart.

A field becomes `--field-name` (metadata `flag` renames it); its `help` metadata is the help text, and the
default is appended to it, with the `example` metadata (or, for a None default, what `unset` means). A boolean defaulting to False is a switch; one defaulting to True is a
`--no-...` switch. Only the standard library is imported: `curate --help` builds every parser.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

_MISSING = dataclasses.MISSING


def _scalar(hint: Any) -> Any:
    """`int | None` -> int; `str` -> str."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner
    return hint


def option_fields(cls: type, names: Iterable[str]) -> list[dataclasses.Field]:
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    return [by_name[n] for n in names]


def default_of(cls: type, name: str) -> Any:
    """The default of field `name` of dataclass `cls`."""
    (f,) = option_fields(cls, [name])
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        return f.default_factory()
    raise ValueError(f"{cls.__name__}.{name} has no default")


def flag_name(f: dataclasses.Field) -> str:
    if "flag" in f.metadata:
        return str(f.metadata["flag"])
    default = f.default
    return ("--no-" if default is True else "--") + f.name.replace("_", "-")


def add_option_flags(parser: Any, cls: type, names: Iterable[str]) -> None:
    """Add one flag per named field of dataclass `cls` to `parser` (a parser or an argument group); the
    parsed value lands under the field's name (see `options_from_args`)."""
    hints = typing.get_type_hints(cls)
    for f in option_fields(cls, names):
        default = default_of(cls, f.name)
        text = str(f.metadata.get("help", ""))
        flag = flag_name(f)
        if isinstance(default, bool):
            action = "store_false" if default else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, default=default, help=text)
            continue
        # an unset default is decided later (e.g. from another option): `unset` metadata says how
        said = f.metadata.get("unset") if default is None else "%(default)s"
        example = f.metadata.get("example")
        tail = f" (default {said}" + (f"; {example}" if example else "") + ")" if said else ""
        parser.add_argument(
            flag,
            dest=f.name,
            type=_scalar(hints[f.name]),
            default=default,
            choices=f.metadata.get("choices"),
            metavar=f.metadata.get("metavar"),
            help=text + tail,
        )


def options_from_args(args: argparse.Namespace, cls: type, names: Iterable[str]) -> dict[str, Any]:
    """The parsed values of the flags `add_option_flags` added, as keyword arguments for `cls`."""
    return {n: getattr(args, n) for n in names}
