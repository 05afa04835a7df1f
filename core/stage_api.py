"""The stage API: everything a stage author needs, in one module that imports nothing of the engine.

A stage is one module. It defines an options model (a `StrictModel`: the YAML keys it accepts), a
step (a datatrove `PipelineStep`, usually a `CurateStep` or `CurateFilter`, whose `__init__` takes
the options object) and registers them together:

    @register_stage("my_filter", MyOptions, "what it does", columns=[Column("my_score", pa.float32(), "...")])
    class MyFilter(CurateFilter): ...

Columns that depend on the options (one score column per configured model) are given as a function
`columns=lambda opts: [...]`. A stage of several steps, barriers or side jobs registers a
`build(options, ctx)` function instead; `ctx` is a `BuildContext` (the engine's plan implements it).
`register_prepare` adds checks that run before any task starts, through a `PreflightContext`.

Built-in stage modules are found by name (`BUILTIN_STAGE_MODULES`), user stages through a config's
`plugins:` list or the `curate.stages` entry-point group (see `plugins.py`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

import pyarrow as pa
from datatrove.pipeline.base import PipelineStep
from pydantic import BaseModel

from . import edits
from .errors import ConfigError, CurateError, InputError
from .options import LocalPath, ModelRef, StrictModel
from .registry import Registry
from .steps import Accounted, CurateFilter, CurateStep, WrappedFilter

__all__ = [
    "Accounted",
    "BuildContext",
    "Column",
    "ColumnsSpec",
    "ConfigError",
    "CurateError",
    "CurateFilter",
    "CurateStep",
    "EDITS_COLUMN",
    "InputError",
    "LocalPath",
    "ModelRef",
    "PreflightContext",
    "StageSpec",
    "StrictModel",
    "WrappedFilter",
    "all_stages",
    "edits",
    "edits_columns",
    "get_prepare",
    "get_stage",
    "register_prepare",
    "register_stage",
    "stage_names",
]


@dataclass(frozen=True)
class Column:
    """An output column a stage adds: stored in doc.metadata under `name`, written as Parquet column `name`."""

    name: str
    type: pa.DataType
    description: str


# the one column every stage that changes a document's text appends to (core/edits.py says what it holds)
EDITS_COLUMN = Column(edits.EDITS, edits.EDIT_TYPE, edits.EDITS_DESCRIPTION)


def edits_columns(options: Any) -> list[Column]:
    """`columns=edits_columns` for a stage whose options have `record_edits`: the edits column when on."""
    return [EDITS_COLUMN] if getattr(options, "record_edits", False) else []


ColumnsSpec = Union[list[Column], Callable[[Any], list[Column]]]


class BuildContext(Protocol):
    """What a stage's `build(options, ctx)` may use to add itself to the run (the engine's `PlanContext`)."""

    stage_label: str  # the stage's label in the config (its name unless `label:` is set)
    output_dir: str

    @property
    def tasks(self) -> int:
        """Tasks of the job the stage is being added to."""

    def add(self, *steps: PipelineStep) -> None:
        """Append steps to the current job; curate steps get the stage label, on_error and a rejected/ writer."""

    def work_path(self, *parts: str) -> str:
        """A scratch folder of this run (in the work folder, never in the dataset)."""

    def barrier(self, name: str, resources: Any = None) -> str:
        """End the current job; later steps run in a new job. Returns the folder of the handed-off documents."""

    def add_job(
        self, name: str, steps: list[PipelineStep], tasks: int, resources: Any = None, writes: list[str] | None = None
    ) -> None:
        """A side job that consumes no documents of the main flow, run before the current one.

        `writes` names the work folders the job writes (default: the `work_path()`s asked for since the last
        job): a rerun that redoes the job clears them, and one that keeps it keeps them."""

    def handoff_reader(self, folder: str) -> PipelineStep:
        """A reader over documents handed off by `barrier()`."""


class PreflightContext(Protocol):
    """What a stage's `prepare(options, pf)` may use: report problems, resolve files, check column names."""

    key: str  # the config key of the stage being checked, e.g. "stages[2]"

    def problem(self, message: str, key: str | None = None) -> None: ...

    def model_file(
        self,
        ref: str,
        key: str,
        filename: str | None = None,
        suffixes: tuple[str, ...] = (".bin", ".ftz"),
        what: str = "model",
    ) -> str | None: ...

    def model_folder(self, ref: str, key: str, what: str = "model folder") -> str | None: ...

    def tokenizer_file(self, ref: str, key: str, filename: str = "tokenizer.json") -> str | None: ...

    def is_local(self, path: str | None) -> bool: ...

    def check_names(self, names: Iterable[str], key: str, own: Iterable[str] = ()) -> None: ...


@dataclass
class StageSpec:
    name: str
    options: type[BaseModel]
    build: Callable[[Any, BuildContext], None]
    summary: str
    static_columns: list[Column] = field(default_factory=list)
    # columns that depend on the options (e.g. one per configured model); None when they do not
    option_columns: Callable[[Any], list[Column]] | None = None

    def columns(self, options: Any) -> list[Column]:
        """The output columns this stage adds with these options."""
        return self.static_columns + (list(self.option_columns(options)) if self.option_columns else [])


_REGISTRY: Registry[StageSpec] = Registry("stage", origin=lambda spec: spec.build)
# stage name -> prepare(options, preflight): checks (and hub resolution) before any task starts
_PREPARE: Registry[Callable[[Any, Any], None]] = Registry("prepare check of stage")

# packages whose `stages` folder holds one module per built-in stage; each is imported on first lookup
BUILTIN_STAGE_PACKAGES = ("curate.pipeline", "curate.dedup", "curate.filters", "curate.refiners")
_loaded = False


def register_stage(
    name: str,
    options: type[BaseModel],
    summary: str,
    columns: ColumnsSpec | None = None,
) -> Callable[[Any], Any]:
    """Decorator: register the stage called `name` in YAML.

    Decorate either a step class whose `__init__` takes the options object (one step per stage: the
    usual case, e.g. a `CurateFilter`), or a `build(options, ctx)` function that adds steps to the plan
    through a `BuildContext` (several steps, barriers, side jobs). `columns` is a list, or a function
    of the options object giving the list.
    """

    def deco(target: Any) -> Any:
        build = _step_builder(target) if isinstance(target, type) else target
        static, dynamic = ([], columns) if callable(columns) else (list(columns or []), None)
        _REGISTRY.add(name, StageSpec(name, options, build, summary, static, dynamic))
        return target

    return deco


def _step_builder(cls: type) -> Callable[[Any, BuildContext], None]:
    def build(options: Any, ctx: BuildContext) -> None:
        ctx.add(cls(options))

    build.__wrapped_stage__ = cls  # type: ignore[attr-defined]
    build.__module__, build.__qualname__ = cls.__module__, cls.__qualname__
    return build


def register_prepare(name: str) -> Callable[[Callable[[Any, Any], None]], Callable[[Any, Any], None]]:
    """Decorator: `prepare(options, preflight)` checks a stage's files and names before a run starts
    (see pipeline/preflight.py); it may point options at resolved local files."""

    def deco(fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        _PREPARE.add(name, fn)
        return fn

    return deco


def get_prepare(name: str) -> Callable[[Any, Any], None] | None:
    load_builtin_stages()
    return _PREPARE.get(name) if name in _PREPARE else None


def builtin_stage_modules() -> list[str]:
    """Every module of the built-in `stages` folders (`curate.dedup.stages.minhash`, ...): one per stage."""
    import pkgutil

    names = []
    for pkg in BUILTIN_STAGE_PACKAGES:
        try:
            folder = importlib.import_module(f"{pkg}.stages")
        except ModuleNotFoundError as e:
            if e.name != f"{pkg}.stages":
                raise
            continue
        names.append(folder.__name__)
        for info in pkgutil.iter_modules(getattr(folder, "__path__", []), prefix=f"{folder.__name__}."):
            if not info.name.rpartition(".")[2].startswith("_"):
                names.append(info.name)
    return names


def load_builtin_stages() -> None:
    """Import every built-in stage module, then the installed plugins (entry points): once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in builtin_stage_modules():
        importlib.import_module(mod)
    from .plugins import load_entry_points

    load_entry_points()


def get_stage(name: str) -> StageSpec:
    """The stage called `name`; an unknown name raises `UnknownName` (a ConfigError and a KeyError)."""
    load_builtin_stages()
    return _REGISTRY.get(name)


def stage_names() -> list[str]:
    load_builtin_stages()
    return sorted(_REGISTRY.names())


def all_stages() -> list[StageSpec]:
    load_builtin_stages()
    return [_REGISTRY.get(n) for n in stage_names()]
