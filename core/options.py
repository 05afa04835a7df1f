"""Option models of stages and config sections: strict (a typo is an error) and path-aware.

A leaf module (pydantic only): stage authors and the config schema both build on it. Also here:
the one-line-per-problem rendering of a pydantic ValidationError (`format_validation_error`) and
the resolution of relative path options against the config's folder (`resolve_paths`).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "LocalPath",
    "ModelRef",
    "PathKind",
    "StrictModel",
    "format_validation_error",
    "is_url",
    "resolve_path",
    "resolve_paths",
]


@dataclass(frozen=True)
class PathKind:
    """Marks a str option as a path, so that a relative value resolves against the config file's folder.

    `path`: a local file or folder (or an fsspec URL, left as it is). `ref`: the same, or a hub
    repository id (`owner/name`), which is left as it is unless a path of that name exists there.
    """

    kind: Literal["path", "ref"]


LocalPath = Annotated[str, PathKind("path")]
ModelRef = Annotated[str, PathKind("ref")]


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a config must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


# ---------------------------------------------------------------------------- error messages


def _loc(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Walk the model along loc[:-1] to list the keys allowed where an unknown key was found."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        current = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), ann
        )
    return list(getattr(current, "model_fields", {}).keys())


def format_validation_error(err: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    problems = []
    for e in err.errors():
        loc = e["loc"]
        where = _loc(prefix, loc)
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            key = str(loc[-1])
            hint = difflib.get_close_matches(key, allowed, n=1)
            msg = f"{where}: unknown key"
            if hint:
                msg += f" (did you mean '{hint[0]}'?)"
            if allowed:
                msg += f"; allowed keys: {', '.join(allowed)}"
            problems.append(msg)
        elif e["type"] == "missing":
            problems.append(f"{where}: required key is missing")
        else:
            value = e.get("input")
            shown = repr(value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            problems.append(f"{where}: {e['msg']} (got {shown})")
    return problems


# ---------------------------------------------------------------------------- relative paths


def is_url(value: str) -> bool:
    return "://" in value


def resolve_path(value: str, kind: str, base: Path) -> str:
    if is_url(value) or os.path.isabs(value) or value.startswith("~"):
        return os.path.expanduser(value)
    candidate = base / value
    if kind == "ref" and not candidate.exists() and _HUB_SHAPE.match(value):
        return value  # a hub repository id, not a path
    return str(candidate.resolve())


_HUB_SHAPE = re.compile(r"^(?:hf://)?[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _path_kind(annotation: Any, metadata: list[Any]) -> str | None:
    for m in metadata:
        if isinstance(m, PathKind):
            return m.kind
    for arg in getattr(annotation, "__args__", ()):  # Optional[LocalPath] and friends
        kind = _path_kind(arg, list(getattr(arg, "__metadata__", ())))
        if kind:
            return kind
    return None


def resolve_paths(model: BaseModel, base: Path) -> None:
    """Make every relative path option of `model` (and of the models inside it) relative to `base`, in place."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        kind = _path_kind(field.annotation, list(field.metadata))
        if kind and isinstance(value, str):
            object.__setattr__(model, name, resolve_path(value, kind, base))
        elif isinstance(value, BaseModel):
            resolve_paths(value, base)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    resolve_paths(item, base)
