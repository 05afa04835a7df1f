"""`curate run`: plan, guard the output folder, execute, merge stats, summarize."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from datatrove.io import get_datafolder

from .config import CurateConfig
from .errors import ConfigError
from .executors import build_executors
from .plan import Plan, build_plan
from .stats import collect_stats, write_stats

RUN_FILE = "_curate_run.json"


def config_fingerprint(config: CurateConfig) -> dict[str, Any]:
    """The parts of a config that decide what each task writes; changing them invalidates finished tasks."""
    raw = config.model_dump(mode="json")
    decisive = {
        "input": raw["input"],
        "output": {k: v for k, v in raw["output"].items()},
        "tasks": raw["executor"]["tasks"],
        "stages": raw["stages"],
        "on_error": raw["on_error"],
    }
    digest = hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]
    return {"fingerprint": digest, "decisive": decisive}


def guard_output(plan: Plan) -> None:
    """Refuse to resume into an output folder written by a different config."""
    out = get_datafolder(plan.output_dir)
    mine = config_fingerprint(plan.config)
    if out.isfile(RUN_FILE):
        with out.open(RUN_FILE, "rt") as f:
            theirs = json.load(f)
        if theirs.get("fingerprint") != mine["fingerprint"]:
            changed = sorted(
                k for k in set(theirs.get("decisive", {})) | set(mine["decisive"])
                if theirs.get("decisive", {}).get(k) != mine["decisive"].get(k)
            )
            raise ConfigError(
                f"output.path: {plan.output_dir!r} holds a run made with a different config "
                f"(changed: {', '.join(changed) or 'unknown'}); its finished tasks would not match. "
                "Write to a new output.path, or delete the old output to start over"
            )
        return
    with out.open(RUN_FILE, "wt") as f:
        json.dump(mine, f, indent=2)


class _Progress:
    """Polls completion markers of every job: works the same for local, Slurm and Ray tasks."""

    def __init__(self, plan: Plan, enabled: bool) -> None:
        self.plan = plan
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _counts(self) -> list[int]:
        out = []
        for i in range(len(self.plan.jobs)):
            df = get_datafolder(self.plan.job_logging_dir(i))
            out.append(len(df.list_files("completions")) if df.isdir("completions") else 0)
        return out

    def _loop(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"),
                      TimeElapsedColumn(), console=console, transient=False, disable=not console.is_terminal) as prog:
            ids = [prog.add_task(f"job {i} {j.name}", total=j.tasks) for i, j in enumerate(self.plan.jobs)]
            last: list[int] = []
            while True:
                counts = self._counts()
                for tid, c in zip(ids, counts):
                    prog.update(tid, completed=c)
                if not console.is_terminal and counts != last:
                    console.print("tasks done: " + ", ".join(f"{j.name} {c}/{j.tasks}" for j, c in zip(self.plan.jobs, counts)))
                last = counts
                if self._stop.wait(1.0):
                    for tid, c in zip(ids, self._counts()):
                        prog.update(tid, completed=c)
                    return

    def __enter__(self) -> "_Progress":
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


def run_config(config: CurateConfig, kind: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run a validated config to completion (local, Ray) or submit it (Slurm); returns the run's stats."""
    plan = build_plan(config)
    guard_output(plan)
    executors = build_executors(plan, kind)
    kind = kind or config.executor.kind
    start = time.time()
    with _Progress(plan, progress and kind != "slurm"):
        executors[-1].run()
    stats = collect_stats(plan)
    stats["wall_s"] = round(time.time() - start, 2)
    stats["executor"] = kind
    write_stats(plan, stats)
    return stats
