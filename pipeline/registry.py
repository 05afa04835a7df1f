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
) -> Callable[[Any], Any]:
    """Decorator: register the stage called `name` in YAML.

    Decorate either a step class whose `__init__` takes the options object (one step per stage: the
    usual case, e.g. a `CurateFilter`), or a `build(options, ctx)` function that adds steps to the plan
    through `PlanContext` (several steps, barriers, side jobs).
    """

    def deco(target: Any) -> Any:
        build = _step_builder(target) if isinstance(target, type) else target
        known = _REGISTRY.get(name)
        if known is not None and getattr(known.build, "__wrapped_stage__", known.build) is not target:
            if getattr(known.build, "__module__", None) != getattr(target, "__module__", None) or \
                    getattr(known.build, "__qualname__", None) != getattr(target, "__qualname__", None):
                raise ValueError(f"stage {name!r} registered twice ({_where(known.build)} and {_where(target)})")
        _REGISTRY[name] = StageSpec(name, options, build, summary, list(columns or []), group)
        return target

    return deco


def _where(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


def _step_builder(cls: type) -> Callable[[Any, "PlanContext"], None]:
    def build(options: Any, ctx: "PlanContext") -> None:
        ctx.add(cls(options))

    build.__wrapped_stage__ = cls  # type: ignore[attr-defined]
    build.__module__, build.__qualname__ = cls.__module__, cls.__qualname__
    return build


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
    from .plugins import load_entry_points

    load_entry_points()


def get_stage(name: str) -> StageSpec:
    load_builtin_stages()
    return _REGISTRY[name]


def stage_names() -> list[str]:
    load_builtin_stages()
    return sorted(_REGISTRY)


def all_stages() -> list[StageSpec]:
    load_builtin_stages()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]
