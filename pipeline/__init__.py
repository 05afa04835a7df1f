"""curate.pipeline: config, plan, readers / writers, executors, stats and the `curate` CLI.

Python API (the same stages as in YAML, without an executor):

    from curate.pipeline import run_stages, load_config, run_config
"""

from .config import CurateConfig, StrictModel, load_config, parse_config
from curate.core.errors import ConfigError, CurateError, InputError
from .inprocess import InProcessResult, run_stages
from .plan import Plan, PlanContext, build_plan
from curate.core.stage_api import Column, register_prepare, register_stage, stage_names
from .run import run_config
from curate.core.steps import Accounted, CurateFilter, CurateStep

__all__ = [
    "Accounted", "Column", "ConfigError", "CurateConfig", "CurateError", "CurateFilter", "CurateStep",
    "InProcessResult", "InputError", "Plan", "PlanContext", "build_plan", "load_config", "parse_config",
    "StrictModel", "register_prepare", "register_stage", "run_config", "run_stages", "stage_names",
]
