"""Resume per job: keep the jobs a config change does not touch, redo the first changed job and those after it.

Each job gets a fingerprint chained from the job before it: what decides its output is the
input and `on_error` (through job 0), its own stages (name, label, options, a `resources:` task
count), its task count, and the output settings for the jobs that write output. So a change to
a late stage (a threshold of the quality rule, the refiner's batch size) keeps every earlier job,
while a change to the input or to job 0's stages redoes everything. Where and how fast a job runs
(executor kind, workers, Slurm / Ray settings, partitions, CPUs, GPUs) is not part of it.

The state lives in the work folder (`WORK/resume.json`). When the work folder is gone (removed
with `curate clean` or `output.keep_work: false`), the output's `_curate_run.json` still says
which config produced the finished dataset.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from datatrove.io import get_datafolder

from curate.core import frozen
from curate.core.atomic import read_json, write_json_atomic

from .executors import incomplete_ranks
from .layout import CARD_FILE, RUN_FILE, STATE_FILE, STATS_FILE
from .plan import Plan

__all__ = ["decide", "apply", "save_state", "write_run_record", "ResumeDecision"]


@dataclass
class ResumeDecision:
    """What a run will do with what an earlier run of the same output left."""

    keep: list[int] = field(default_factory=list)  # job indices whose finished tasks are kept
    redo: list[int] = field(default_factory=list)  # job indices redone from scratch (their old files removed)
    reason: str = ""  # why the first redone job changed ("" when nothing did)
    finished: bool = False  # every job finished with this very config: nothing to do
    previous_wall_s: float = 0.0

    def describe(self, plan: Plan) -> str:
        if self.finished:
            return "nothing to do: every job of this config has finished"
        if not self.redo or self.redo == list(range(len(plan.jobs))) and not self.reason:
            return ""
        names = ", ".join(f"{i} {plan.jobs[i].name}" for i in self.redo)
        kept = f"; kept: jobs {', '.join(str(i) for i in self.keep)}" if self.keep else ""
        return f"resume: {self.reason}; redoing jobs {names}{kept}"


def _why(plan: Plan, old: dict[str, Any], index: int) -> str:
    """The first difference that changed job `index`, in words."""
    cur_global = plan.fingerprint["global"]
    if old.get("global") != cur_global:
        return "the input or on_error changed"
    jobs = old.get("jobs", [])
    if index >= len(jobs):
        return f"job {index} ({plan.jobs[index].name}) is new"
    was = jobs[index]
    now_stages = plan.stage_fingerprints
    for label in plan.jobs[index].stages:
        if label not in was.get("stages", {}):
            return f"stage {label!r} is new"
        if was["stages"][label] != now_stages.get(label):
            return f"stage {label!r} changed"
    for label in was.get("stages", {}):
        if label not in plan.jobs[index].stages:
            return f"stage {label!r} was removed"
    if was.get("tasks") != plan.jobs[index].tasks:
        return f"job {index} ({plan.jobs[index].name}) now has {plan.jobs[index].tasks} tasks (was {was.get('tasks')})"
    if was.get("name") != plan.jobs[index].name:
        return f"job {index} is now {plan.jobs[index].name!r} (was {was.get('name')!r})"
    return "the output settings changed"


def decide(plan: Plan) -> ResumeDecision:
    """Compare this plan with the state an earlier run left in the work folder (or the output)."""
    fps = plan.job_fingerprints
    all_jobs = list(range(len(plan.jobs)))
    old = read_json(plan.work_dir, STATE_FILE)
    if old is None:
        record = read_json(plan.output_dir, RUN_FILE)
        if record and record.get("finished"):
            if record.get("fingerprint") == plan.fingerprint["fingerprint"]:
                return ResumeDecision(keep=all_jobs, finished=True, previous_wall_s=float(record.get("wall_s", 0)))
            return ResumeDecision(
                redo=all_jobs, reason="the output holds a finished run of another config (its work folder is gone)"
            )
        return ResumeDecision(redo=all_jobs)
    if not plan.config.executor.skip_completed:
        return ResumeDecision(redo=all_jobs, reason="executor.skip_completed is false")
    old_fps = [j.get("fingerprint") for j in old.get("jobs", [])]
    first = next((i for i, fp in enumerate(fps) if i >= len(old_fps) or old_fps[i] != fp), len(fps))
    wall = float(old.get("wall_s", 0))
    if first == len(fps) and len(old_fps) == len(fps):
        done = not any(incomplete_ranks(plan, i) for i in all_jobs)
        return ResumeDecision(keep=all_jobs, finished=done, previous_wall_s=wall)
    reason = _why(plan, old, first) if first < len(fps) else "jobs were removed from the end"
    return ResumeDecision(keep=all_jobs[:first], redo=all_jobs[first:], reason=reason, previous_wall_s=wall)


def job_writes(plan: Plan, index: int) -> list[str]:
    """Every folder job `index` writes: its work folders (handoff, side-job data), its rejected/ folders and,
    for the last job, data/. Resume clears exactly these when it redoes the job."""
    job = plan.jobs[index]
    out = list(job.writes)
    for step in job.steps:
        writer = getattr(step, "rejected_writer", None)
        if writer is not None:
            out.append(writer.output_folder.path)
    if job.writes_output:
        out.append(plan.data_dir)
    return out


def _writes_before_0_2(plan: Plan, job: dict[str, Any]) -> list[str]:
    """A state saved before jobs listed their folders: its stages' rejected/ folders (handoffs and side-job
    folders of redone jobs are cleared by the new plan's own list)."""
    return [plan.layout.rejected_dir(label) for label in job.get("stages", {})]


def _rm_path(path: str) -> None:
    df = get_datafolder(path)
    if df.exists(""):
        df.rm("", recursive=True)


def apply(plan: Plan, decision: ResumeDecision) -> None:
    """Remove what the redone jobs wrote before (markers, stats, logs, their own folders) and nothing else.

    A redone job's inputs are written by earlier, kept jobs (a MinHash filter reads the clusters its side
    jobs made): they stay. What an earlier run's redone jobs wrote is known from the state it saved, so a
    job the new config no longer has is cleared too.
    """
    old = read_json(plan.work_dir, STATE_FILE) or {}
    first = decision.redo[0] if decision.redo else None
    if first is not None:
        kept = {p for i in decision.keep for p in job_writes(plan, i)}
        doomed = {p for i in decision.redo for p in job_writes(plan, i)}
        for j in old.get("jobs", [])[first:]:
            doomed.update(j.get("writes", _writes_before_0_2(plan, j)))
        logs = get_datafolder(plan.logging_dir)
        for name in logs.ls("", detail=False) if logs.exists("") else []:
            base = posixpath.basename(name.rstrip("/"))
            if base[:2].isdigit() and int(base[:2]) >= first:
                logs.rm(base, recursive=True)
        for path in sorted(doomed - kept):
            _rm_path(path)
        for name in (STATS_FILE, CARD_FILE):
            _rm_path(posixpath.join(plan.output_dir, name))
    save_state(plan, decision.previous_wall_s, finished=False)


def save_state(plan: Plan, wall_s: float, finished: bool) -> None:
    fps, stages = plan.job_fingerprints, plan.stage_fingerprints
    state = {
        "global": plan.fingerprint["global"],
        "jobs": [
            {
                "name": j.name,
                "tasks": j.tasks,
                "fingerprint": fp,
                "stages": {s: stages.get(s) for s in j.stages},
                "writes": job_writes(plan, i),
            }
            for i, (j, fp) in enumerate(zip(plan.jobs, fps))
        ],
        "wall_s": round(wall_s, 2),
        "finished": finished,
    }
    write_json_atomic(plan.work_dir, STATE_FILE, state)


def write_run_record(plan: Plan, wall_s: float, finished: bool) -> None:
    """`OUTPUT/_curate_run.json`: which config made this dataset (report and resume read it)."""
    record = {
        **plan.fingerprint,
        "config": plan.config.model_dump(mode="json"),
        "work_dir": plan.work_dir,
        # values the run decided (quantile thresholds), per stage label: core/frozen.py
        "frozen": frozen.collect(plan.intermediate_dir, [e.label for e in plan.config.entries]),
        "wall_s": round(wall_s, 2),
        "finished": finished,
    }
    write_json_atomic(plan.output_dir, RUN_FILE, record)
