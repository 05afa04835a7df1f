"""What an executor kind is, and the registry of kinds (`executor.kind` in a config).

A kind is one module in this package: a subclass of `ExecutorKind` registered with
`@register_kind`. It says how to turn a plan's job into a datatrove executor (`build`), what to do
before the jobs start (`prepare`: start Ray, clear half-written files of tasks this process
runs), and how to launch the chain of jobs (`launch`: run them here, or submit them and maybe
wait). `run_config` reads prepare -> decide -> launch -> finish and never asks which kind it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from datatrove.executor.base import PipelineExecutor
from datatrove.utils.stats import PipelineStats

from curate.core.registry import Registry

from ..failures import clear_failures, describe_failure, record_failure
from ..logs import task_logging
from ..plan import Job, Plan


@dataclass
class Launched:
    """What `launch` did: `finished` when every job ran to its end here (the run can be finished now);
    otherwise the jobs were handed to a scheduler, and `info` (e.g. the Slurm job ids) goes to stats."""

    finished: bool
    info: dict[str, Any] = field(default_factory=dict)
    notice: str = ""  # a line for the person who started the run (e.g. where to follow submitted jobs)


class ExecutorKind:
    """One way of running a plan's jobs. Subclasses set `name` and implement `build` and `launch`."""

    name: ClassVar[str] = ""
    # the module the kind needs and the pip extra that installs it (checked before the run)
    requires: ClassVar[tuple[str, str] | None] = None

    def prepare(self, plan: Plan) -> None:
        """Before any job starts (after resume decided what to keep)."""

    def build(self, plan: Plan, index: int, job: Job, depends: PipelineExecutor | None) -> PipelineExecutor:
        raise NotImplementedError

    def launch(self, plan: Plan, executors: list[PipelineExecutor], wait: bool) -> Launched:
        raise NotImplementedError


KINDS: Registry[type[ExecutorKind]] = Registry("executor kind")
K = TypeVar("K", bound=type[ExecutorKind])


def register_kind(cls: K) -> K:
    KINDS.add(cls.name, cls)
    return cls


def get_kind(name: str) -> ExecutorKind:
    return KINDS.get(name)()


class TaskLogging:
    """Mixin for datatrove executors: curate's log file and console around each task, and a failure record
    (pipeline/failures.py) when the task raises, wherever it runs."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> PipelineStats:
        with task_logging():
            try:
                return super()._run_for_rank(rank, local_rank, node_rank)  # type: ignore[misc]
            except Exception as e:
                record_failure(self.logging_dir, rank, e)  # type: ignore[attr-defined]
                raise


def run_jobs_here(plan: Plan, executors: list[PipelineExecutor]) -> Launched:
    """Run jobs one after another, waiting for each; stop at the first job that left tasks unfinished, with
    the one line of pipeline/failures.py."""
    from curate.core.errors import CurateError

    for i, e in enumerate(executors):
        clear_failures(plan.job_logging_dir(i))
        e.run()
        missing = e.get_incomplete_ranks(skip_completed=True)
        if missing:
            job = plan.jobs[i]
            raise CurateError(describe_failure(i, job.name, job.tasks, plan.job_logging_dir(i), missing))
    return Launched(finished=True)
