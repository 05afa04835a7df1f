"""One registry of stages, looked up by the name written in YAML.

A stage is registered with its option model (a pydantic model: the YAML keys it accepts), the
output columns it adds (name -> arrow type + description, so output Parquet has a stable schema)
and a `build(options, ctx)` function that adds datatrove steps to the plan through `PlanContext`.
Stage modules of `curate.dedup`, `curate.filters` and `curate.refiners` register themselves on
import; `load_builtin_stages()` imports them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa
from pydantic import BaseModel

if TYPE_CHECKING:
    from .plan import PlanContext


@dataclass(frozen=True)
class Column:
    """An output column a stage adds: stored in doc.metadata under `name`, written as Parquet column `name`."""

    name: str
    type: pa.DataType
    description: str


@dataclass
class StageSpec:
    name: str
    options: type[BaseModel]
    build: Callable[[Any, "PlanContext"], None]
    summary: str
    columns: list[Column] = field(default_factory=list)
    # a factory giving plain in-process steps for run_stages(); defaults to build() on a scratch plan
    group: str = "other"


_REGISTRY: dict[str, StageSpec] = {}
# stage name -> prepare(options, preflight): checks (and hub resolution) before any task starts
_PREPARE: dict[str, Callable[[Any, Any], None]] = {}

# modules whose import registers stages; a missing optional dependency only hides that module's stages
_BUILTIN_MODULES = (
    "curate.pipeline.basic_stages",
    "curate.dedup.stages",
    "curate.filters.stages",
    "curate.refiners.stages",
    "curate.refiners.label",
)
_loaded = False


def register_stage(
    name: str,
    options: type[BaseModel],
    summary: str,
    columns: list[Column] | None = None,
    group: str = "other",
) -> Callable[[Callable[[Any, "PlanContext"], None]], Callable[[Any, "PlanContext"], None]]:
    """Decorator: register `build(options, ctx)` as the stage called `name` in YAML."""

    def deco(build: Callable[[Any, "PlanContext"], None]) -> Callable[[Any, "PlanContext"], None]:
        if name in _REGISTRY and _REGISTRY[name].build is not build:
            raise ValueError(f"stage {name!r} registered twice")
        _REGISTRY[name] = StageSpec(name, options, build, summary, list(columns or []), group)
        return build

    return deco


def register_prepare(name: str) -> Callable[[Callable[[Any, Any], None]], Callable[[Any, Any], None]]:
    """Decorator: `prepare(options, preflight)` checks a stage's files and names before a run starts
    (see pipeline/preflight.py); it may point options at resolved local files."""

    def deco(fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        _PREPARE[name] = fn
        return fn

    return deco


def get_prepare(name: str) -> Callable[[Any, Any], None] | None:
    load_builtin_stages()
    return _PREPARE.get(name)


def load_builtin_stages() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            # only tolerate a module that does not exist yet; a broken import inside it must surface
            if e.name != mod:
                raise


def get_stage(name: str) -> StageSpec:
    load_builtin_stages()
    return _REGISTRY[name]


def stage_names() -> list[str]:
    load_builtin_stages()
    return sorted(_REGISTRY)


def all_stages() -> list[StageSpec]:
    load_builtin_stages()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]
