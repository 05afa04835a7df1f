"""Executor kinds (`executor.kind`): one module each (local, slurm, ray), registered in base.KINDS.

`build_executors` turns a plan's jobs into datatrove executors of the chosen kind, each depending on
the one before (`depends=`); the kind's `launch` runs or submits them.
"""

from __future__ import annotations

from datatrove.executor.base import PipelineExecutor
from datatrove.executor.local import LocalPipelineExecutor

from ..plan import Plan
from . import local, ray, slurm  # noqa: F401, I001 - each registers its kind, in this order
from .base import KINDS, ExecutorKind, Launched, get_kind, register_kind
from .local import CurateLocalExecutor
from .slurm import slurm_env_command, slurm_mem

__all__ = [
    "KINDS",
    "CurateLocalExecutor",
    "ExecutorKind",
    "Launched",
    "build_executors",
    "get_kind",
    "incomplete_ranks",
    "register_kind",
    "slurm_env_command",
    "slurm_mem",
]


def incomplete_ranks(plan: Plan, index: int) -> list[int]:
    """Tasks of job `index` that have not finished, decided as datatrove's executors decide them
    (`get_incomplete_ranks`: a task is done when its completion marker exists), whatever ran them."""
    probe = LocalPipelineExecutor(
        pipeline=[], tasks=plan.jobs[index].tasks, logging_dir=plan.job_logging_dir(index), skip_completed=True
    )
    return probe.get_incomplete_ranks()


def build_executors(plan: Plan, kind: str | ExecutorKind | None = None) -> list[PipelineExecutor]:
    """One executor per job, each depending on the previous one. `kind` overrides executor.kind."""
    chosen = kind if isinstance(kind, ExecutorKind) else get_kind(kind or plan.config.executor.kind)
    executors: list[PipelineExecutor] = []
    prev: PipelineExecutor | None = None
    for i, job in enumerate(plan.jobs):
        prev = chosen.build(plan, i, job, prev)
        executors.append(prev)
    return executors
