"""`curate run`: plan, guard the output folder, execute, merge stats, summarize.

Local and Ray runs execute job after job in this process and stop at the first job with a
failed task. A Slurm run submits every job as an array job (`afterok` on the one before) plus
one last job that merges the stats (`curate stats`, `afterany`), then returns; with `wait` it
follows the jobs with `squeue` until they leave the queue and prints the summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from typing import Any

from datatrove.io import get_datafolder

from .config import CurateConfig
from .errors import ConfigError, CurateError
from .executors import build_executors
from .plan import Plan, build_plan
from .readers import is_remote
from .stats import collect_stats, write_stats

RUN_FILE = "_curate_run.json"


def config_fingerprint(config: CurateConfig) -> dict[str, Any]:
    """The parts of a config that decide what each task writes; changing them invalidates finished tasks."""
    raw = config.model_dump(mode="json")
    stages = []
    for st in raw["stages"]:
        st = dict(st)
        if isinstance(st.get("resources"), dict):
            # a `resources:` block makes a job boundary, and its task count decides how documents are
            # split; where and how fast the job runs (partition, cpus, gpus, time, workers) does not
            st["resources"] = {"tasks": st["resources"].get("tasks")}
        stages.append(st)
    decisive = {
        "input": raw["input"],
        "output": {k: v for k, v in raw["output"].items()},
        "tasks": raw["executor"]["tasks"],
        "stages": stages,
        "on_error": raw["on_error"],
    }
    digest = hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]
    return {"fingerprint": digest, "decisive": decisive}


def check_output_writable(output_dir: str) -> None:
    """Fail before any task starts when the output folder cannot be created or written (local paths)."""
    if is_remote(output_dir):
        return  # object stores: credentials and buckets are checked by the first write
    path = output_dir[len("file://"):] if output_dir.startswith("file://") else output_dir
    probe = os.path.join(path, f".curate-write-test-{uuid.uuid4().hex[:8]}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise CurateError(f"output.path: cannot write to {output_dir!r}: {e.strerror or e}; "
                          "choose a writable folder (--output or output.path)") from None


def remove_stale_partials(plan: Plan) -> int:
    """Delete `.NAME.partial` files a killed task left behind (output, rejected/ and handoffs).

    They are invisible to every reader (hidden names, handoff readers match `[0-9]*.parquet`) and
    a rerun of their task overwrites them; removing them keeps the output folder clean. Only called
    for runs executed by this process: on Slurm a task of an earlier submission may still be writing.
    """
    if is_remote(plan.output_dir):
        return 0
    n = 0
    for root, _dirs, files in os.walk(plan.output_dir):
        for f in files:
            if f.startswith(".") and f.endswith(".partial"):
                os.remove(os.path.join(root, f))
                n += 1
    return n


def guard_output(plan: Plan) -> None:
    """Refuse to resume into an output folder written by a different config."""
    check_output_writable(plan.output_dir)
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
                if not console.is_terminal and counts != last:  # logs: one line per change, never folded
                    console.print("tasks done: " + ", ".join(f"{j.name} {c}/{j.tasks}" for j, c in zip(self.plan.jobs, counts)),
                                  soft_wrap=True)
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


def _incomplete(plan: Plan, index: int) -> list[int]:
    df = get_datafolder(plan.job_logging_dir(index))
    done = set(df.list_files("completions")) if df.isdir("completions") else set()
    return [r for r in range(plan.jobs[index].tasks) if f"completions/{r:05d}" not in done]


def _first_task_error(plan: Plan, index: int, ranks: list[int]) -> str | None:
    """The first ERROR line of the failed tasks' logs (e.g. an on_error: fail message)."""
    df = get_datafolder(plan.job_logging_dir(index))
    for r in ranks:
        name = f"logs/task_{r:05d}.log"
        if not df.isfile(name):
            continue
        with df.open(name, "rt") as f:
            for line in f:
                if "| ERROR" in line:
                    return line.split(" - ", 1)[-1].strip()
    return None


def _ensure_ray(config: CurateConfig) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=config.executor.ray.address, log_to_driver=False)


def _run_here(plan: Plan, executors: list[Any]) -> None:
    """Run jobs one after another in this process; stop at the first job that left tasks unfinished."""
    for i, e in enumerate(executors):
        e.run()
        missing = _incomplete(plan, i)
        if missing:
            job = plan.jobs[i]
            why = _first_task_error(plan, i, missing)
            raise CurateError(
                f"job {i} ({job.name}): {len(missing)} of {job.tasks} tasks failed"
                + (f": {why}" if why else "")
                + f"; logs in {plan.job_logging_dir(i)}/logs; rerun the same command to retry them"
            )


def run_config(config: CurateConfig, kind: str | None = None, progress: bool = True, wait: bool = False) -> dict[str, Any]:
    """Run a validated config to completion (local, Ray) or submit it (Slurm; `wait` follows it to the end).

    Returns the run's stats (for a Slurm run without `wait`: what has completed so far, plus the job ids).
    """
    plan = build_plan(config)
    guard_output(plan)
    kind = kind or config.executor.kind
    if kind != "slurm":
        remove_stale_partials(plan)
    if kind == "ray":
        _ensure_ray(config)
    executors = build_executors(plan, kind)
    start = time.time()
    slurm_jobs: list[str] = []
    with _Progress(plan, progress and (kind != "slurm" or wait)):
        if kind == "slurm":
            from .slurm import submit, wait_for_jobs

            slurm_jobs = submit(plan, executors)
            if wait and slurm_jobs:
                wait_for_jobs(slurm_jobs)
        else:
            _run_here(plan, executors)
    stats = collect_stats(plan)
    stats["wall_s"] = round(time.time() - start, 2)
    stats["executor"] = kind
    if slurm_jobs:
        stats["slurm_jobs"] = slurm_jobs
    write_stats(plan, stats)
    return stats
