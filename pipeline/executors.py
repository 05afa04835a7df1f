"""Turn a Plan's jobs into datatrove executors (local, Slurm or Ray), chained with `depends=`."""

from __future__ import annotations

import os
import sys
from typing import Any

from datatrove.executor.base import PipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor

from .config import ExecutorConfig, Resources
from .plan import Job, Plan


class CurateSlurmExecutor(SlurmPipelineExecutor):
    """datatrove's Slurm executor without its per-job `merge_stats` job.

    curate merges the stats of every job itself (`curate stats`, submitted by `curate run` as one
    final dependent job), so the extra job per stage would only add queue entries, and with
    `afterok` it would stay pending forever when a task fails.
    """

    def launch_merge_stats(self) -> None:
        return None

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        args = super().get_sbatch_args(max_array)
        # datatrove writes f"{mem_per_cpu_gb}G": "2.0G" from a float config value, which sbatch rejects
        args["mem-per-cpu"] = slurm_mem(self.mem_per_cpu_gb)
        return args


def slurm_mem(gb: float) -> str:
    """Memory in the form sbatch accepts: whole megabytes."""
    return f"{max(1, int(round(gb * 1024)))}M"


def slurm_env_command(s: Any) -> str | None:
    """The shell line that makes `launch_pickled_pipeline` and `python -m curate...` work in a job.

    `env_command` wins; `venv_path` may name the virtualenv folder or its `bin/activate`; with
    neither, jobs activate the virtualenv `curate` itself runs from (if any), so a plain
    `curate run` from a project `.venv` works on a shared filesystem with no extra key.
    """
    if s.env_command:
        return s.env_command
    if s.venv_path:
        act = s.venv_path
        if os.path.isdir(act):
            act = os.path.join(act, "bin", "activate")
        return f"source {act}"
    if sys.prefix != sys.base_prefix and os.path.isfile(os.path.join(sys.prefix, "bin", "activate")):
        return f"source {os.path.join(sys.prefix, 'bin', 'activate')}"
    return None


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
        env_command=slurm_env_command(s),
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
            e = CurateSlurmExecutor(
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
