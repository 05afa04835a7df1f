"""A failed task, in one line: the job, the stage, the exception type and message, and the task's log.

The task that fails writes `failures/NNNNN.json` in its job's logging folder (on the filesystem every
executor shares with the launcher), so the line reads the same for a job of 1 task run in-process, of
10,000 on Slurm, or on Ray. It also says whether rerunning can help: an error that comes from the
data or the config (it will happen again) says to fix the cause, a transient one (I/O, memory, a
lost worker) says to rerun.
"""

from __future__ import annotations

import posixpath
import traceback
from types import TracebackType
from typing import Any

from datatrove.io import DataFolder, get_datafolder
from datatrove.pipeline.base import PipelineStep

from curate.core.atomic import read_json, write_json_atomic

from .layout import FAILURES

# exceptions a rerun may not meet again
TRANSIENT = (OSError, MemoryError, TimeoutError, ConnectionError, EOFError)


def failing_stage(tb: TracebackType | None) -> str | None:
    """The label of the innermost pipeline step on the traceback: the step whose code raised."""
    stage = None
    for frame, _line in traceback.walk_tb(tb):
        owner = frame.f_locals.get("self")
        if isinstance(owner, PipelineStep):
            stage = getattr(owner, "label", None) or owner.name
    return stage


def record_failure(logging_dir: DataFolder, rank: int, exc: BaseException) -> None:
    """In the task's process, as it fails: what the launcher's one line will say."""
    message = str(exc).strip().splitlines()
    record = {
        "rank": rank,
        "stage": failing_stage(exc.__traceback__),
        "type": type(exc).__name__,
        "message": message[0] if message else "",
        "transient": isinstance(exc, TRANSIENT) and not isinstance(exc, (FileNotFoundError, PermissionError)),
    }
    try:
        write_json_atomic(logging_dir, _record_name(rank), record)
    except OSError:  # the log folder itself is gone: the launcher falls back to the log file
        pass


def read_failure(job_logging_dir: str, rank: int) -> dict[str, Any] | None:
    return read_json(job_logging_dir, _record_name(rank))


def _record_name(rank: int) -> str:
    return posixpath.join(FAILURES, f"{rank:05d}.json")


def clear_failures(job_logging_dir: str) -> None:
    df = get_datafolder(job_logging_dir)
    if df.isdir(FAILURES):
        df.rm(FAILURES, recursive=True)


def describe_failure(index: int, job_name: str, tasks: int, job_logging_dir: str, ranks: list[int]) -> str:
    """`job 3 (minhash_dedup): 1 of 4 tasks failed in stage gneissweb_ensemble: ValueError: ...; log: ...`."""
    first = next((f for f in (read_failure(job_logging_dir, r) for r in ranks) if f), None)
    rank = first["rank"] if first else ranks[0]
    log = posixpath.join(job_logging_dir, "logs", f"task_{rank:05d}.log")
    head = f"job {index} ({job_name}): {len(ranks)} of {tasks} tasks failed"
    if first is None:  # died without a word (killed, out of memory): a rerun may get through
        return (
            f"{head} (no error recorded: killed, or out of memory?); log: {log}; rerun the same command to retry them"
        )
    where = f" in stage {first['stage']}" if first.get("stage") else ""
    what = f"{first['type']}: {first['message']}" if first.get("message") else first["type"]
    skip = "on_error: skip" if first["type"] == "InputError" else "on_stage_error: skip"
    advice = (
        "rerun the same command to retry them"
        if first.get("transient")
        else f"it will fail again: fix the cause (or set {skip}), then rerun; finished tasks are kept"
    )
    return f"{head}{where}: {what}; log: {log}; {advice}"
