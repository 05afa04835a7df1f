"""Turn a Plan's jobs into datatrove executors (local, Slurm or Ray), chained with `depends=`."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from datatrove.executor.base import PipelineExecutor
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.executor.ray import RayPipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor
from datatrove.utils.stats import PipelineStats

from curate.core.errors import CurateError

from .config import ExecutorConfig
from .failures import record_failure
from .logs import task_logging
from .plan import Job, Plan
from .stage_entries import Resources


class _TaskLogging:
    """Mixin for datatrove executors: curate's console and log-file handling around each task only."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> PipelineStats:
        with task_logging():
            try:
                return super()._run_for_rank(rank, local_rank, node_rank)  # type: ignore[misc]
            except Exception as e:
                record_failure(self.logging_dir, rank, e)  # type: ignore[attr-defined]
                raise


class CurateLocalExecutor(_TaskLogging, LocalPipelineExecutor):
    """datatrove's local executor, but a worker that cannot start fails the job instead of hanging.

    datatrove runs tasks in a `multiprocess.Pool`, which replaces a worker that dies (while importing
    the user's script, unpickling the pipeline, or killed for memory) with a new one and waits for the
    lost task forever. A `ProcessPoolExecutor` on the same forkserver context marks the pool broken
    instead, and the job ends with that error.
    """

    def run(self) -> PipelineStats | None:
        ranks = self.get_incomplete_ranks(range(self.local_rank_offset, self.local_rank_offset + self.local_tasks))
        if not ranks:
            return None
        if self.workers == 1:
            return self._run_here(ranks)
        import multiprocessing

        import dill

        self._launched = True
        self.save_executor_as_json()
        # once: the pipeline travels as bytes, tasks as (rank, local rank); `recurse` carries the globals that
        # steps defined in the user's script use (their module is never imported in a worker)
        blob = dill.dumps(self, recurse=True)
        ctx = multiprocessing.get_context(self.start_method)
        stats = PipelineStats()
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(ranks)), mp_context=ctx)
        try:
            with _script_not_reimported():
                # local rank 0 (the one that prints to the console) goes to the first task: one console voice
                futures = [pool.submit(_run_task, blob, rank, 0 if k == 0 else 1) for k, rank in enumerate(ranks)]
            for f in futures:  # every task runs to its end
                try:
                    stats += f.result()
                except BrokenProcessPool:
                    raise
                except Exception:  # noqa: S112 - a task's own error: in its log; the run reports the unfinished tasks
                    continue
        except BrokenProcessPool:
            raise CurateError(
                "a worker process died before finishing its task (killed for memory, or it could not start: "
                "see the message above); the task logs are in "
                f"{self.logging_dir.path}/logs; rerun the same command to retry"
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        with self.logging_dir.open("stats.json", "wt") as statsfile:
            stats.save_to_disk(statsfile)
        return stats

    def _run_here(self, ranks: list[int]) -> PipelineStats:
        """Tasks one after another in this process. A failed task is reported like one in a worker (its error
        in its log and failure record, the run's one line from the launcher), and the next task still runs."""
        import copy

        self._launched = True
        self.save_executor_as_json()
        pipeline, stats = self.pipeline, PipelineStats()
        for rank in ranks:
            self.pipeline = copy.deepcopy(pipeline)  # steps keep per-task state
            try:
                stats += self._run_for_rank(rank)
            except Exception:  # noqa: S112 - recorded by _run_for_rank; the launcher reports unfinished tasks
                continue
            finally:
                self.pipeline = pipeline
        with self.logging_dir.open("stats.json", "wt") as statsfile:
            stats.save_to_disk(statsfile)
        return stats


@contextlib.contextmanager
def _script_not_reimported() -> Iterator[None]:
    """While workers start: forkserver / spawn children import the script that started the run (as
    `__mp_main__`), which re-runs a `run_config(...)` not guarded by `if __name__ == "__main__":` and
    starts workers of its own. The pipeline travels pickled by dill, which carries what the script
    defines by value, so workers do not need the script: hide it from multiprocessing meanwhile."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


_UNPICKLED: dict[int, Any] = {}


def _run_task(blob: bytes, rank: int, local_rank: int) -> PipelineStats:
    """In a worker process: one task of the executor pickled in `blob` (unpickled once per worker)."""
    import copy

    import dill

    key = hash(blob)
    if key not in _UNPICKLED:
        _UNPICKLED.clear()
        _UNPICKLED[key] = dill.loads(blob)
    executor = copy.copy(_UNPICKLED[key])
    executor.pipeline = copy.deepcopy(executor.pipeline)  # steps keep per-task state: a fresh copy per task
    return executor._run_for_rank(rank, local_rank)


class CurateRayExecutor(_TaskLogging, RayPipelineExecutor):
    """datatrove's Ray executor with curate's task logging (ray itself is imported only when it runs)."""


class CurateSlurmExecutor(_TaskLogging, SlurmPipelineExecutor):
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


def _with_plugins(env_command: str | None) -> str | None:
    """Slurm jobs start fresh: file plugins' folders go on PYTHONPATH so their stages unpickle there."""
    from curate.core.plugins import worker_pythonpath

    path = worker_pythonpath()
    if path is None:
        return env_command
    return "; ".join(c for c in (env_command, f"export PYTHONPATH={path}") if c)


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
        env_command=_with_plugins(slurm_env_command(s)),
    )
    if s.qos:
        kw["qos"] = s.qos
    else:
        # datatrove writes `--qos=normal` by default; many clusters have no such QOS
        kw["qos"] = ""
    return kw


def _ray_plugin_env() -> dict[str, Any] | None:
    from curate.core.plugins import worker_pythonpath

    path = worker_pythonpath()
    return {"runtime_env": {"env_vars": {"PYTHONPATH": path}}} if path else None


def incomplete_ranks(plan: Plan, index: int) -> list[int]:
    """Tasks of job `index` that have not finished, decided as datatrove's executors decide them
    (`get_incomplete_ranks`: a task is done when its completion marker exists), whatever ran them."""
    probe = LocalPipelineExecutor(
        pipeline=[], tasks=plan.jobs[index].tasks, logging_dir=plan.job_logging_dir(index), skip_completed=True
    )
    return probe.get_incomplete_ranks()


def build_executors(plan: Plan, kind: str | None = None) -> list[PipelineExecutor]:
    """One executor per job, each depending on the previous one. `kind` overrides executor.kind."""
    ex = plan.config.executor
    kind = kind or ex.kind
    executors: list[PipelineExecutor] = []
    prev = None
    for i, job in enumerate(plan.jobs):
        logdir = plan.job_logging_dir(i)
        if kind == "local":
            workers = job.workers if job.workers != -1 else job.tasks
            e: PipelineExecutor = CurateLocalExecutor(
                pipeline=job.steps,
                tasks=job.tasks,
                workers=min(workers, job.tasks),
                logging_dir=logdir,
                depends=prev,
                skip_completed=ex.skip_completed,
            )
        elif kind == "slurm":
            e = CurateSlurmExecutor(
                pipeline=job.steps,
                logging_dir=logdir,
                depends=prev,
                skip_completed=ex.skip_completed,
                **_slurm_kwargs(ex, job, f"{i:02d}-{job.name}"),
            )
        elif kind == "ray":
            r = job.resources or Resources()
            e = CurateRayExecutor(
                pipeline=job.steps,
                tasks=job.tasks,
                workers=job.workers,
                logging_dir=logdir,
                depends=prev,
                skip_completed=ex.skip_completed,
                cpus_per_task=r.cpus_per_task or ex.ray.cpus_per_task,
                mem_per_cpu_gb=r.mem_per_cpu_gb or ex.ray.mem_per_cpu_gb,
                gpus_per_task=r.gpus_per_task,
                ray_remote_kwargs=_ray_plugin_env(),
            )
        else:  # pragma: no cover - the config schema rejects other kinds
            raise ValueError(kind)
        executors.append(e)
        prev = e
    return executors
