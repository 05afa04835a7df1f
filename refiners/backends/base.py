"""What every refiner backend builds on: the interface, the registry, the per-process engine cache.

A backend is one module in this folder, named as the backend is in YAML (`backend: vllm` is
`backends/vllm.py`). It defines an options model (the YAML keys only it reads) and a class that
takes `(model, options)` and writes programs with `generate(prompts, max_tokens)`; `@register_backend`
ties them to the name. It also declares `needs_model`: a backend that loads a model gets prompts as
that model's token ids, and its model folders are checked before a run; one that does not (the
`boilerplate` generator) reads the prompt text and is given no model.

Why the modules are found by listing this folder, and not through a table of names: a new backend
is then one file and nothing else, and listing names (`pkgutil.iter_modules`) imports nothing. A
module is imported when its backend is asked for (`get_backend`), or when every backend's options
are needed (`all_backends`: `curate stages`, an option that belongs to another backend). That import
is cheap: vLLM, torch and transformers are imported inside the methods that run a model.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, Field

from curate.core.options import StrictModel
from curate.core.registry import Registry

from ..prompts import Prompt

__all__ = [
    "Backend",
    "BackendSpec",
    "Generation",
    "ModelLoadOptions",
    "all_backends",
    "backend_names",
    "cached_engine",
    "get_backend",
    "make_backend",
    "register_backend",
    "strip_eos",
]


@dataclass
class Generation:
    text: str  # decoded output, stripped of spaces at both ends as ProX does (`.strip(" ")`)
    token_ids: list[int] = field(default_factory=list)  # generated ids, EOS excluded


class Backend(Protocol):
    name: str
    needs_model: ClassVar[bool]

    def generate(self, prompts: Sequence[Prompt], max_tokens: int) -> list[Generation]: ...


class ModelLoadOptions(StrictModel):
    """Keys of every backend that loads model weights."""

    dtype: str = Field("bfloat16", description="model weights dtype")
    max_model_len: int = Field(2048, ge=64, description="context length (ProX refiners: 2048)")


@dataclass(frozen=True)
class BackendSpec:
    name: str
    options: type[BaseModel]
    factory: Callable[[str | None, Any], Backend]
    needs_model: bool
    # (module, what installs it) for each optional package the backend imports when it runs
    requires: tuple[tuple[str, str], ...] = ()

    def missing_packages(self) -> list[str]:
        """One line per package this backend needs that is not installed, naming the pip extra."""
        return [
            f"backend {self.name} needs the {module!r} package, which is not installed: {how}"
            for module, how in self.requires
            if not _importable(module)
        ]

    def create(self, model: str | None, options: BaseModel | None = None) -> Backend:
        """A backend on `model` (None for one that needs no model), with these options (default: the defaults)."""
        return self.factory(model, options if options is not None else self.options())


def _importable(module: str) -> bool:
    """Installed, without importing it (a blocked import, a sys.modules entry of None, counts as missing)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_REGISTRY: Registry[BackendSpec] = Registry("backend", origin=lambda spec: spec.factory)
_PACKAGE = __name__.rpartition(".")[0]
_NOT_BACKENDS = {"base"}


def register_backend(name: str, options: type[BaseModel]) -> Callable[[type], type]:
    """Class decorator: the backend called `name` in YAML, with its options model. The class takes
    `(model, options)`, has `generate(prompts, max_tokens)` and a class attribute `needs_model`."""

    def deco(cls: type) -> type:
        module = cls.__module__.rpartition(".")[2]
        if cls.__module__.startswith(_PACKAGE + ".") and module != name:
            # get_backend finds a backend by its module's name: a mismatch would make it unreachable
            raise ValueError(f"backend {name!r} is registered in module {module!r}; name the module {name}.py")
        needs_model = getattr(cls, "needs_model", None)
        if not isinstance(needs_model, bool):
            raise ValueError(f"backend {name!r}: {cls.__qualname__} must declare needs_model = True | False")
        _REGISTRY.add(name, BackendSpec(name, options, cls, needs_model, tuple(getattr(cls, "requires", ()))))
        cls.name = name  # type: ignore[attr-defined]  # the name is stated once, here
        return cls

    return deco


def backend_names() -> list[str]:
    """Every backend of this folder, by module name, without importing any."""
    folder = str(Path(__file__).resolve().parent)
    return sorted(
        m.name for m in pkgutil.iter_modules([folder]) if m.name not in _NOT_BACKENDS and not m.name.startswith("_")
    )


def get_backend(name: str) -> BackendSpec:
    """The backend called `name`; its module is imported here. An unknown name raises `UnknownName` (a
    ConfigError and a KeyError) naming every backend of the folder."""
    if name not in _REGISTRY:
        for module in [name] if name in backend_names() else backend_names():
            importlib.import_module(f"{_PACKAGE}.{module}")
    return _REGISTRY.get(name)


def all_backends() -> list[BackendSpec]:
    return [get_backend(n) for n in backend_names()]


def make_backend(name: str, model: str | None = None, **options: Any) -> Backend:
    """The backend called `name` on `model`, its options given as keywords (validated by its own model)."""
    spec = get_backend(name)
    return spec.create(model, spec.options.model_validate(options))


_ENGINES: dict[Any, Any] = {}


def cached_engine(key: Any, make: Callable[[], Any]) -> Any:
    """One engine per (backend, model, options) per process: built on first use, then reused."""
    eng = _ENGINES.get(key)
    if eng is None:
        eng = _ENGINES[key] = make()
    return eng


def strip_eos(ids: Sequence[int], eos: int | None) -> list[int]:
    ids = list(ids)
    if eos is not None and eos in ids:
        ids = ids[: ids.index(eos)]
    return ids
