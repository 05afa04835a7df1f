"""Turn a Plan's jobs into datatrove executors (local, Slurm or Ray), chained with `depends=`."""

from __future__ import annotations

from typing import Any

from datatrove.executor.base import PipelineExecutor

from .config import ExecutorConfig, Resources
from .plan import Job, Plan


def _slurm_kwargs(ex: ExecutorConfig, job: Job, name: str) -> dict[str, Any]:
    s = ex.slurm
    r = job.resources or Resources()
    kw: dict[str, Any] = dict(
        tasks=job.tasks,
        workers=job.workers,
        time=r.time or s.time,
        partition=r.partition or s.partition,
        cpus_per_task=r.cpus_per_task or s.cpus_per_task,
        mem_per_cpu_gb=r.mem_per_cpu_gb or s.mem_per_cpu_gb,
        gpus_per_task=r.gpus_per_task,
        job_name=f"{s.job_name}-{name}",
        sbatch_args=dict(s.sbatch_args),
        max_array_size=s.max_array_size,
        venv_path=s.venv_path,
        env_command=s.env_command,
    )
    if s.qos:
        kw["qos"] = s.qos
    else:
        # datatrove writes `--qos=normal` by default; many clusters have no such QOS
        kw["qos"] = ""
    return kw


def build_executors(plan: Plan, kind: str | None = None) -> list[PipelineExecutor]:
    """One executor per job, each depending on the previous one. `kind` overrides executor.kind."""
    ex = plan.config.executor
    kind = kind or ex.kind
    executors: list[PipelineExecutor] = []
    prev = None
    for i, job in enumerate(plan.jobs):
        logdir = plan.job_logging_dir(i)
        if kind == "local":
            from datatrove.executor import LocalPipelineExecutor

            workers = job.workers if job.workers != -1 else job.tasks
            e: PipelineExecutor = LocalPipelineExecutor(
                pipeline=job.steps, tasks=job.tasks, workers=min(workers, job.tasks), logging_dir=logdir,
                depends=prev, skip_completed=ex.skip_completed,
            )
        elif kind == "slurm":
            from datatrove.executor import SlurmPipelineExecutor

            e = SlurmPipelineExecutor(
                pipeline=job.steps, logging_dir=logdir, depends=prev, skip_completed=ex.skip_completed,
                **_slurm_kwargs(ex, job, f"{i:02d}-{job.name}"),
            )
        elif kind == "ray":
            from datatrove.executor import RayPipelineExecutor

            r = job.resources or Resources()
            e = RayPipelineExecutor(
                pipeline=job.steps, tasks=job.tasks, workers=job.workers, logging_dir=logdir, depends=prev,
                skip_completed=ex.skip_completed,
                cpus_per_task=r.cpus_per_task or ex.ray.cpus_per_task,
                mem_per_cpu_gb=r.mem_per_cpu_gb or ex.ray.mem_per_cpu_gb,
                gpus_per_task=r.gpus_per_task,
            )
        else:  # pragma: no cover - the config schema rejects other kinds
            raise ValueError(kind)
        executors.append(e)
        prev = e
    return executors
