"""What the person running curate sees while the tasks run, read from the files every executor writes.

Completion markers give the progress bars; the task logs give every task's warnings (bad input, a
document a stage raised on), the first `WARNINGS_PER_TASK` of each task, whichever executor ran it
(a Ray worker's or a Slurm job's console never reaches this terminal); and when no task has
finished for `executor.stall_notice_s`, one line says which tasks the run is waiting for.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from datatrove.io import get_datafolder

from .executors import incomplete_ranks
from .plan import Plan, job_title

WARNINGS_PER_TASK = 20
# set while curate's launcher shows the tasks' warnings itself (tasks then keep them out of their console)
TASK_CONSOLE_ENV = "CURATE_TASK_CONSOLE"


class _LogTail:
    """New complete WARNING lines of every task log of one job, at most WARNINGS_PER_TASK per task."""

    def __init__(self, logging_dir: str, job: str) -> None:
        self.folder = get_datafolder(logging_dir)
        self.job = job
        self.offsets: dict[str, int] = {}
        self.shown: dict[str, int] = {}

    def new_lines(self) -> list[str]:
        if not self.folder.isdir("logs"):
            return []
        out: list[str] = []
        for name in sorted(self.folder.list_files("logs", glob_pattern="task_*.log")):
            out += self._read(name)
        return out

    def _read(self, name: str) -> list[str]:
        start = self.offsets.get(name, 0)
        with self.folder.open(name, "rb") as f:
            f.seek(start)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        self.offsets[name] = start + end
        task = name.rsplit("_", 1)[-1].split(".")[0].lstrip("0") or "0"
        out = []
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            if "| WARNING" not in line:
                continue
            n = self.shown[name] = self.shown.get(name, 0) + 1
            if n <= WARNINGS_PER_TASK:
                out.append(f"WARNING  | job {self.job} task {task} | {line.split(' - ', 1)[-1]}")
            elif n == WARNINGS_PER_TASK + 1:
                out.append(f"WARNING  | job {self.job} task {task} | more warnings in {self.folder.path}/{name}")
        return out


class RunWatch:
    """A thread for the length of a run: progress bars (when `display`), task warnings, stall notices."""

    def __init__(self, plan: Plan, display: bool, stall_s: float | None = None) -> None:
        self.plan = plan
        self.display = display
        self.stall_s = stall_s if stall_s is not None else plan.config.executor.stall_notice_s
        self.tails = [_LogTail(plan.job_logging_dir(i), j.name) for i, j in enumerate(plan.jobs)]
        # jobs whose logs are read to their end: every task finished, in an earlier run (its warnings were shown
        # then) or in this one (read once after)
        self._drained = {i for i, c in enumerate(self._counts()) if c == plan.jobs[i].tasks}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved_env: str | None = None

    def _counts(self) -> list[int]:
        return [job.tasks - len(incomplete_ranks(self.plan, i)) for i, job in enumerate(self.plan.jobs)]

    def _warnings(self, console: Any, counts: list[int]) -> None:
        """New warnings of the jobs still running (a finished job's logs are read once more, then no longer
        listed: a run of thousands of tasks does not re-list every log each second)."""
        for i, tail in enumerate(self.tails):
            if i in self._drained:
                continue
            for line in tail.new_lines():
                console.print(line, soft_wrap=True, markup=False, highlight=False)
            if counts[i] == self.plan.jobs[i].tasks:
                self._drained.add(i)

    def _stalled(self, counts: list[int]) -> str:
        i = next((k for k, (c, j) in enumerate(zip(counts, self.plan.jobs)) if c < j.tasks), None)
        if i is None:
            return ""
        ranks = incomplete_ranks(self.plan, i)
        shown = ", ".join(str(r) for r in ranks[:20]) + (f" and {len(ranks) - 20} more" if len(ranks) > 20 else "")
        return (
            f"no task has finished for {self.stall_s:.0f} s: waiting for job {i} ({self.plan.jobs[i].name}) "
            f"tasks {shown}; their logs are in {self.plan.job_logging_dir(i)}/logs"
        )

    def _loop(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tasks"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not (self.display and console.is_terminal),
        ) as prog:
            ids = [prog.add_task(job_title(i, j), total=j.tasks) for i, j in enumerate(self.plan.jobs)]
            last: list[int] = []
            changed = time.monotonic()
            while True:
                counts = self._counts()
                for tid, c in zip(ids, counts):
                    prog.update(tid, completed=c)
                self._warnings(prog.console, counts)
                if counts != last:
                    changed = time.monotonic()
                    if self.display and not console.is_terminal:  # logs: one line per change, never folded
                        console.print(
                            "tasks done: "
                            + ", ".join(f"{j.name} {c}/{j.tasks}" for j, c in zip(self.plan.jobs, counts)),
                            soft_wrap=True,
                        )
                elif self.stall_s and time.monotonic() - changed >= self.stall_s:
                    message = self._stalled(counts)
                    if message:
                        console.print(message, soft_wrap=True, markup=False)
                    changed = time.monotonic()  # once per stall period
                last = counts
                if self._stop.wait(1.0):
                    counts = self._counts()
                    for tid, c in zip(ids, counts):
                        prog.update(tid, completed=c)
                    self._warnings(prog.console, counts)
                    return

    def __enter__(self) -> RunWatch:
        self._saved_env = os.environ.get(TASK_CONSOLE_ENV)
        os.environ[TASK_CONSOLE_ENV] = "0"  # inherited by local workers: their warnings come through here
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        if self._saved_env is None:
            os.environ.pop(TASK_CONSOLE_ENV, None)
        else:
            os.environ[TASK_CONSOLE_ENV] = self._saved_env
        sys.stderr.flush()
