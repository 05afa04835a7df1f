"""`curate run`: plan, guard the output folder, execute, merge stats, summarize.

Local and Ray runs execute job after job in this process and stop at the first job with a
failed task. A Slurm run submits every job as an array job (`afterok` on the one before) plus
one last job that merges the stats (`curate stats`, `afterany`), then returns; with `wait` it
follows the jobs with `squeue` until they leave the queue and prints the summary.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

from datatrove.io import get_datafolder

from curate.core.atomic import write_atomic
from curate.core.errors import CurateError

from . import resume
from .config import CurateConfig
from .executors import build_executors
from .failures import clear_failures, describe_failure
from .logs import quiet_console
from .plan import Plan, build_plan
from .progress import RunWatch
from .readers import is_remote
from .stats import collect_stats, write_stats


def remove_stale_partials(plan: Plan) -> int:
    """Delete `.NAME.partial` files a killed task left behind (output, rejected/ and handoffs).

    They are invisible to every reader (hidden names, handoff readers match `[0-9]*.parquet`) and
    a rerun of their task overwrites them; removing them keeps the output folder clean. Only called
    for runs executed by this process: on Slurm a task of an earlier submission may still be writing.
    """
    n = 0
    for folder in (plan.output_dir, plan.work_dir):
        if is_remote(folder):
            continue
        for root, _dirs, files in os.walk(folder):
            for f in files:
                if f.startswith(".") and f.endswith(".partial"):
                    os.remove(os.path.join(root, f))
                    n += 1
    return n


def notice(message: str) -> None:
    """A line for the person running curate (stderr, so stdout stays clean for --json and pipes)."""
    print(message, file=sys.stderr, flush=True)


def _ensure_ray(config: CurateConfig) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=config.executor.ray.address, log_to_driver=False)


def _run_here(plan: Plan, executors: list[Any]) -> None:
    """Run jobs one after another in this process; stop at the first job that left tasks unfinished."""
    for i, e in enumerate(executors):
        clear_failures(plan.job_logging_dir(i))
        e.run()
        missing = e.get_incomplete_ranks(skip_completed=True)
        if missing:
            job = plan.jobs[i]
            raise CurateError(describe_failure(i, job.name, job.tasks, plan.job_logging_dir(i), missing))


def _refuse_in_worker_bootstrap() -> None:
    """A worker process re-imports the user's script (forkserver / spawn); a run started there again would
    start workers of its own, forever. Stop it with the fix, in one line."""
    import multiprocessing

    for mod in (multiprocessing, _multiprocess()):
        if mod is not None and getattr(mod.current_process(), "_inheriting", False):
            print(
                "curate: run_config() was called while a worker process imported your script; put the call "
                'under `if __name__ == "__main__":` (worker processes import the script that starts a run)',
                file=sys.stderr,
                flush=True,
            )
            os._exit(3)


def _multiprocess() -> Any:
    try:
        import multiprocess

        return multiprocess
    except ImportError:  # pragma: no cover - datatrove depends on it
        return None


def prepare_run(config: CurateConfig) -> Plan:
    """Everything that can be checked before work: plan, inputs, outputs, models, rule names."""
    from .preflight import preflight

    # before the plan: steps are built on the resolved (local) files; output and work folders are checked there
    report = preflight(config, download=True)
    for note in report.notes:
        notice(f"note: {note}")
    return build_plan(config)


def finish_run(plan: Plan, stats: dict[str, Any], wall_s: float) -> None:
    """After the last task: stats.json; for a complete run also the dataset card, the run record and,
    unless output.keep_work, the work folder removed."""
    from .dataset_card import write_dataset_card

    stats["wall_s"] = round(wall_s, 2)
    complete = bool(stats.get("complete"))
    if complete:
        ensure_data_file(plan)
    write_stats(plan, stats)
    resume.save_state(plan, wall_s, finished=complete)
    resume.write_run_record(plan, wall_s, finished=complete)
    if complete:
        write_dataset_card(plan, stats)
        if not plan.config.output.keep_work:
            remove_work_dir(plan.work_dir)


def ensure_data_file(plan: Plan) -> None:
    """A run that dropped every document still publishes a data file: the full schema, zero rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = get_datafolder(plan.data_dir)
    if data.exists("") and any(f.endswith(".parquet") for f in data.list_files()):
        return
    sink = pa.BufferOutputStream()
    pq.write_table(plan.schema.empty_table(), sink)
    write_atomic(data, "00000.parquet", sink.getvalue().to_pybytes())


def remove_work_dir(work_dir: str) -> bool:
    df = get_datafolder(work_dir)
    if not df.exists(""):
        return False
    df.rm("", recursive=True)
    return True


def run_config(
    config: CurateConfig, kind: str | None = None, progress: bool = True, wait: bool = False
) -> dict[str, Any]:
    """Run a validated config to completion (local, Ray) or submit it (Slurm; `wait` follows it to the end).

    Jobs an earlier run of the same output finished with the same stages are kept (see resume.py).
    Returns the run's stats (for a Slurm run without `wait`: what has completed so far, plus the job ids).
    """
    _refuse_in_worker_bootstrap()
    plan = prepare_run(config)
    kind = kind or config.executor.kind
    decision = resume.decide(plan)
    if decision.finished:
        stats = _saved_stats(plan)
        if stats is not None:
            notice(
                f"nothing to do: every job of this config has already finished (wall {stats.get('wall_s', 0)} s); "
                f"output: {plan.output_dir}"
            )
            stats["nothing_to_do"] = True
            return stats
    message = decision.describe(plan)
    if message:
        notice(message)
    resume.apply(plan, decision)
    resume.write_run_record(plan, decision.previous_wall_s, finished=False)
    if kind != "slurm":
        remove_stale_partials(plan)
    if kind == "ray":
        _ensure_ray(config)
    executors = build_executors(plan, kind)
    start = time.time()
    slurm_jobs: list[str] = []
    watching = kind != "slurm" or wait
    with RunWatch(plan, progress) if watching else contextlib.nullcontext(), quiet_console():
        if kind == "slurm":
            from .slurm import submit, wait_for_jobs

            slurm_jobs = submit(plan, executors)
            if wait and slurm_jobs:
                wait_for_jobs(slurm_jobs)
        else:
            try:
                _run_here(plan, executors)
            except CurateError:
                # what did run stays inspectable: `curate stats OUT` shows the stages that never ran
                failed = collect_stats(plan)
                failed["executor"] = kind
                failed["wall_s"] = round(decision.previous_wall_s + time.time() - start, 2)
                write_stats(plan, failed)
                resume.save_state(plan, failed["wall_s"], finished=False)
                raise
    stats = collect_stats(plan)
    stats["executor"] = kind
    if slurm_jobs:
        stats["slurm_jobs"] = slurm_jobs
    if kind == "slurm" and not wait:
        stats["wall_s"] = round(decision.previous_wall_s, 2)
        write_stats(plan, stats)  # the stats job finishes the run when the last array job ends
        return stats
    finish_run(plan, stats, decision.previous_wall_s + time.time() - start)
    return stats


def _saved_stats(plan: Plan) -> dict[str, Any] | None:
    import json

    df = get_datafolder(plan.output_dir)
    if not df.isfile("stats.json"):
        return None
    with df.open("stats.json", "rt") as f:
        return json.load(f)
