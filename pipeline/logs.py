"""Console logging of tasks: datatrove prints every task's INFO lines; curate keeps those in the
per-task log files and shows on the console only warnings and errors (CURATE_LOG_LEVEL=INFO
brings the rest back).

Patched at import of curate's steps, so that it also holds inside forkserver workers and Slurm
jobs, which unpickle (and so import) those steps before running a task.
"""

from __future__ import annotations

import os
import sys

import datatrove.executor.base as _base
from loguru import logger

_FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"


def console_level() -> str:
    return os.environ.get("CURATE_LOG_LEVEL", "WARNING").upper()


def console_sink(prefix: str = "") -> None:
    """Replace loguru's console sink by a quieter one. Exceptions are not printed as tracebacks on the
    console (bad input is one readable line); the task log files keep full tracebacks."""
    fmt = "<level>{level: <8}</level> | " + prefix + "{message}\n"
    logger.add(sys.stderr, level=console_level(), format=lambda _record: fmt, colorize=None)


def _add_task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):  # type: ignore[no-untyped-def]
    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    prefix = (f"node {node_rank} " if node_rank != -1 else "") + f"task {rank} | "
    if local_rank == 0:
        console_sink(prefix)
    logger.add(logfile, colorize=False, level="DEBUG", format=_FILE_FORMAT)
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


def _close_task_logger(logfile):  # type: ignore[no-untyped-def]
    logger.complete()
    logger.remove()
    console_sink()
    logfile.close()


def quiet_task_bars() -> None:
    """For the CLI: no per-task tqdm bars from datatrove's dedup steps ("Initializing pq...", "Reading dup
    files") under curate's own progress display. Task processes (local workers, Slurm jobs, Ray workers)
    inherit the environment variable and import tqdm with it set; tasks run in this process (one-task
    jobs) get the patched names. CURATE_LOG_LEVEL=INFO keeps the bars, with the INFO lines."""
    if console_level() in ("INFO", "DEBUG", "TRACE"):
        return
    import functools

    import datatrove.pipeline.dedup.exact_dedup as exact
    import datatrove.pipeline.dedup.minhash as minhash

    os.environ.setdefault("TQDM_DISABLE", "1")
    for mod in (exact, minhash):
        if hasattr(mod, "tqdm"):
            mod.tqdm = functools.partial(mod.tqdm, disable=True)


_base.add_task_logger = _add_task_logger
_base.close_task_logger = _close_task_logger
