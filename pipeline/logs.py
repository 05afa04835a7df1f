"""Console logging inside curate's own runs, and nowhere else.

datatrove prints every task's INFO lines and tqdm bars; inside a curate run the per-task log files
keep all of that and the console shows warnings and errors only (CURATE_LOG_LEVEL=INFO brings the
rest back). Importing curate changes nothing: a hand-written datatrove pipeline in the same process
logs as datatrove does. The task side is applied by curate's executors around each task
(`task_logging`, in the worker process: local workers, Slurm jobs, Ray workers); the launcher side
by `quiet_console` around `run_config` and `run_stages`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from typing import Any

import datatrove.executor.base as _base
from loguru import logger

_FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"


def console_level() -> str:
    return os.environ.get("CURATE_LOG_LEVEL", "WARNING").upper()


def _quiet() -> bool:
    return console_level() not in ("INFO", "DEBUG", "TRACE")


def console_sink(prefix: str = "") -> int:
    """Add curate's console sink: one readable line per message, no traceback on the console (the task
    log files keep full tracebacks)."""
    fmt = "<level>{level: <8}</level> | " + prefix + "{message}\n"
    hid = logger.add(sys.stderr, level=console_level(), format=lambda _record: fmt, colorize=None)
    _SINKS.add(hid)
    return hid


_SINKS: set[int] = set()  # console sinks curate added in this process


def _add_task_logger(logging_dir: Any, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    prefix = (f"node {node_rank} " if node_rank != -1 else "") + f"task {rank} | "
    # under `curate run` the launcher shows every task's warnings from the log files (pipeline/progress.py)
    if local_rank == 0 and os.environ.get("CURATE_TASK_CONSOLE", "1") != "0":
        console_sink(prefix)
    logger.add(logfile, colorize=False, level="DEBUG", format=_FILE_FORMAT)
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


def _close_task_logger(logfile: Any) -> None:
    logger.complete()
    logger.remove()
    console_sink()
    logfile.close()


@contextlib.contextmanager
def _no_task_bars() -> Iterator[None]:
    """datatrove's dedup steps draw tqdm bars per task ("Initializing pq...", "Reading dup files")."""
    if not _quiet():
        yield
        return
    import datatrove.pipeline.dedup.exact_dedup as exact
    import datatrove.pipeline.dedup.minhash as minhash

    saved = [(m, m.tqdm) for m in (exact, minhash) if hasattr(m, "tqdm")]
    for m, bar in saved:
        m.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        for m, bar in saved:
            m.tqdm = bar


@contextlib.contextmanager
def task_logging() -> Iterator[None]:
    """Around one task, in the process that runs it: curate's task log file and quiet console."""
    saved = _base.add_task_logger, _base.close_task_logger
    _base.add_task_logger, _base.close_task_logger = _add_task_logger, _close_task_logger
    try:
        with _no_task_bars():
            yield
    finally:
        _base.add_task_logger, _base.close_task_logger = saved


def _plain_stderr_handlers() -> list[tuple[int, int]]:
    """(id, level) of loguru handlers that print everything to stderr the way loguru's default does.

    loguru has no public way to list handlers; `_core.handlers` is the one stable place (loguru 0.6-0.7).
    """
    core = getattr(logger, "_core", None)
    handlers = getattr(core, "handlers", {}) or {}
    return [
        (hid, int(getattr(h, "levelno", getattr(h, "_levelno", 0))))
        for hid, h in list(handlers.items())
        if getattr(h, "_name", "") == "<stderr>" and int(getattr(h, "levelno", getattr(h, "_levelno", 0))) < 30
    ]


@contextlib.contextmanager
def quiet_console() -> Iterator[None]:
    """Around a run in the launcher (a script, a notebook): datatrove's INFO lines and bars stay off the
    console. Plain stderr handlers below WARNING (loguru's default, as a notebook has it) are swapped for
    curate's and given back after; other handlers the user added are theirs and are left alone."""
    swapped = _plain_stderr_handlers()
    for hid, _level in swapped:
        with contextlib.suppress(ValueError):
            logger.remove(hid)
    sink = console_sink() if swapped else None
    env_had = "TQDM_DISABLE" in os.environ
    if _quiet() and not env_had:
        os.environ["TQDM_DISABLE"] = "1"  # inherited by worker processes started now
    try:
        with _no_task_bars():
            yield
    finally:
        if _quiet() and not env_had:
            os.environ.pop("TQDM_DISABLE", None)
        if swapped:
            for hid in {
                h for h in (sink, *_SINKS) if h is not None
            }:  # ours, and the one an in-process task's logger left behind
                with contextlib.suppress(ValueError):
                    logger.remove(hid)
            _SINKS.clear()
            for _hid, level in swapped:
                logger.add(sys.stderr, level=level)
