"""executor.kind: local: every job on this machine, one after another, tasks in worker processes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from datatrove.executor.base import PipelineExecutor
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.utils.stats import PipelineStats

from curate.core.errors import CurateError

from ..layout import remove_stale_partials
from ..plan import Job, Plan
from .base import ExecutorKind, Launched, TaskLogging, register_kind, run_jobs_here


@register_kind
class LocalKind(ExecutorKind):
    name = "local"

    def prepare(self, plan: Plan) -> None:
        remove_stale_partials(plan.layout)  # this process runs every task: none is still writing

    def build(self, plan: Plan, index: int, job: Job, depends: PipelineExecutor | None) -> PipelineExecutor:
        workers = job.workers if job.workers != -1 else job.tasks
        return CurateLocalExecutor(
            pipeline=job.steps,
            tasks=job.tasks,
            workers=min(workers, job.tasks),
            logging_dir=plan.job_logging_dir(index),
            depends=depends,
            skip_completed=plan.config.executor.skip_completed,
        )

    def launch(self, plan: Plan, executors: list[PipelineExecutor], wait: bool) -> Launched:
        return run_jobs_here(plan, executors)


class CurateLocalExecutor(TaskLogging, LocalPipelineExecutor):
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
        pipeline, stats = self.pipeline, PipelineStats()  # type: ignore[has-type]  # datatrove leaves it untyped
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
