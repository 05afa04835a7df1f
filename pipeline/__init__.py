"""curate.pipeline: config, plan, readers / writers, executors, stats and the `curate` CLI.

Python API (the same stages as in YAML, without an executor):

    from curate.pipeline import run_stages, load_config, run_config
"""

from curate.core.errors import ConfigError, CurateError, InputError
from curate.core.stage_api import Column, register_prepare, register_stage, stage_names
from curate.core.steps import Accounted, CurateFilter, CurateStep

from .config import CurateConfig, StrictModel, load_config, parse_config
from .inprocess import InProcessResult, run_stages
from .plan import Plan, PlanContext, build_plan
from .run import run_config

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
    "build_plan",
    "load_config",
    "parse_config",
    "StrictModel",
    "register_prepare",
    "register_stage",
    "run_config",
    "run_stages",
    "stage_names",
]
