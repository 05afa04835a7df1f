"""Option models of stages and config sections: strict (a typo is an error) and path-aware.

A leaf module (pydantic only): stage authors and the config schema both build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["LocalPath", "ModelRef", "PathKind", "StrictModel"]


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
