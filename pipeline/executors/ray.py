"""executor.kind: ray: every job on a Ray cluster (a local one unless executor.ray.address), one after another."""

from __future__ import annotations

from typing import Any

from datatrove.executor.base import PipelineExecutor
from datatrove.executor.ray import RayPipelineExecutor

from ..layout import remove_stale_partials
from ..plan import Job, Plan
from ..stage_entries import Resources
from .base import ExecutorKind, Launched, TaskLogging, register_kind, run_jobs_here


class CurateRayExecutor(TaskLogging, RayPipelineExecutor):
    """datatrove's Ray executor with curate's task logging (ray itself is imported only when it runs)."""


def _ray_plugin_env() -> dict[str, Any] | None:
    from curate.core.plugins import worker_pythonpath

    path = worker_pythonpath()
    return {"runtime_env": {"env_vars": {"PYTHONPATH": path}}} if path else None


@register_kind
class RayKind(ExecutorKind):
    name = "ray"
    requires = ("ray", "ray")

    def prepare(self, plan: Plan) -> None:
        import ray

        remove_stale_partials(plan.layout)  # the driver waits for every task: none is still writing
        if not ray.is_initialized():
            ray.init(address=plan.config.executor.ray.address, log_to_driver=False)

    def build(self, plan: Plan, index: int, job: Job, depends: PipelineExecutor | None) -> PipelineExecutor:
        ex = plan.config.executor
        r = job.resources or Resources()
        return CurateRayExecutor(
            pipeline=job.steps,
            tasks=job.tasks,
            workers=job.workers,
            logging_dir=plan.job_logging_dir(index),
            depends=depends,
            skip_completed=ex.skip_completed,
            cpus_per_task=r.cpus_per_task or ex.ray.cpus_per_task,
            mem_per_cpu_gb=r.mem_per_cpu_gb or ex.ray.mem_per_cpu_gb,
            gpus_per_task=r.gpus_per_task,
            ray_remote_kwargs=_ray_plugin_env(),
        )

    def launch(self, plan: Plan, executors: list[PipelineExecutor], wait: bool) -> Launched:
        return run_jobs_here(plan, executors)
