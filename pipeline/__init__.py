"""curate.pipeline: config, plan, readers / writers, executors, stats and the `curate` CLI.

Python API (the same stages as in YAML, without an executor):

    from curate.pipeline import run_stages, load_config, run_config

The names below load on first use (PEP 562): `curate --help` imports this package, and importing
config / plan / run here would load datatrove and pyarrow before the CLI has parsed a flag.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# exported name -> the module that defines it
_EXPORTS = {
    "ConfigError": "curate.core.errors",
    "CurateError": "curate.core.errors",
    "InputError": "curate.core.errors",
    "Column": "curate.core.stage_api",
    "register_prepare": "curate.core.stage_api",
    "register_stage": "curate.core.stage_api",
    "stage_names": "curate.core.stage_api",
    "Accounted": "curate.core.steps",
    "CurateFilter": "curate.core.steps",
    "CurateStep": "curate.core.steps",
    "CurateConfig": "curate.pipeline.config",
    "StrictModel": "curate.pipeline.config",
    "load_config": "curate.pipeline.config",
    "parse_config": "curate.pipeline.config",
    "InProcessResult": "curate.pipeline.inprocess",
    "run_stages": "curate.pipeline.inprocess",
    "Plan": "curate.pipeline.plan",
    "PlanContext": "curate.pipeline.plan",
    "build_plan": "curate.pipeline.plan",
    "run_config": "curate.pipeline.run",
}

__all__ = [
    "Accounted",
    "Column",
    "ConfigError",
    "CurateConfig",
    "CurateError",
    "CurateFilter",
    "CurateStep",
    "InProcessResult",
    "InputError",
    "Plan",
    "PlanContext",
    "StrictModel",
    "build_plan",
    "load_config",
    "parse_config",
    "register_prepare",
    "register_stage",
    "run_config",
    "run_stages",
    "stage_names",
]

if TYPE_CHECKING:
    from curate.core.errors import ConfigError, CurateError, InputError
    from curate.core.stage_api import Column, register_prepare, register_stage, stage_names
    from curate.core.steps import Accounted, CurateFilter, CurateStep

    from .config import CurateConfig, StrictModel, load_config, parse_config
    from .inprocess import InProcessResult, run_stages
    from .plan import Plan, PlanContext, build_plan
    from .run import run_config


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
