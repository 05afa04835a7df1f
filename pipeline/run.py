"""`curate run`: plan, guard the output folder, execute, merge stats, summarize.

How the jobs run is the executor kind's business (pipeline/executors/: local and Ray run job after
job and stop at the first job with a failed task; Slurm submits array jobs and a last stats job,
and with `wait` follows them to the end); this module never asks which kind it has.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from datatrove.io import get_datafolder

from curate.core.atomic import write_atomic
from curate.core.errors import CurateError

from . import resume
from .config import CurateConfig
from .executors import build_executors, get_kind
from .layout import STATS_FILE, remove_work_dir
from .logs import quiet_console
from .plan import Plan, build_plan
from .progress import RunWatch
from .stats import collect_stats, write_stats


def notice(message: str) -> None:
    """A line for the person running curate (stderr, so stdout stays clean for --json and pipes)."""
    print(message, file=sys.stderr, flush=True)


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


def run_config(
    config: CurateConfig, kind: str | None = None, progress: bool = True, wait: bool = False
) -> dict[str, Any]:
    """Run a validated config to completion (local, Ray) or submit it (Slurm; `wait` follows it to the end).

    prepare (checks, plan) -> decide (what an earlier run of this output left is kept, resume.py) ->
    launch (the executor kind runs or submits the jobs) -> finish (stats, card, run record).
    Returns the run's stats (for a submitted run: what has completed so far, plus what the kind reports).
    """
    _refuse_in_worker_bootstrap()
    plan = prepare_run(config)
    executor = get_kind(kind or config.executor.kind)
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
    executor.prepare(plan)
    executors = build_executors(plan, executor)
    start = time.time()
    with RunWatch(plan, progress), quiet_console():
        try:
            launched = executor.launch(plan, executors, wait)
        except CurateError:
            # what did run stays inspectable: `curate stats OUT` shows the stages that never ran
            failed = collect_stats(plan)
            failed["executor"] = executor.name
            failed["wall_s"] = round(decision.previous_wall_s + time.time() - start, 2)
            write_stats(plan, failed)
            resume.save_state(plan, failed["wall_s"], finished=False)
            raise
    stats = collect_stats(plan)
    stats["executor"] = executor.name
    stats.update(launched.info)
    if not launched.finished:  # submitted: the scheduler's last job finishes the run (`curate stats`)
        stats["wall_s"] = round(decision.previous_wall_s, 2)
        stats["submitted"] = launched.notice
        write_stats(plan, stats)
        return stats
    finish_run(plan, stats, decision.previous_wall_s + time.time() - start)
    return stats


def _saved_stats(plan: Plan) -> dict[str, Any] | None:
    import json

    df = get_datafolder(plan.output_dir)
    if not df.isfile(STATS_FILE):
        return None
    with df.open(STATS_FILE, "rt") as f:
        return json.load(f)
