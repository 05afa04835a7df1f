"""Slurm submission and waiting for `curate run` (datatrove builds and submits the array jobs).

What gets submitted: one array job per plan job (`#SBATCH --array=0-N%workers`, each array task
runs `srun launch_pickled_pipeline executor.pik` for one datatrove rank), each `afterok` on the
one before, so a job with its own `resources:` (e.g. GPU refinement) starts only when the CPU
stages before it have all succeeded. Last comes one small job, `afterany` on the last array job,
that runs `python -m curate.pipeline.cli stats` to merge per-task stats into `stats.json`
(`afterany`, so a partly failed run still gets its stats, marked incomplete).

On rerun, datatrove submits only the ranks without a completion marker (`ranks_to_run.json`).
"""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
import sys
import time
from typing import Any

import yaml
from datatrove.executor.base import PipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor, launch_slurm_job
from datatrove.io import get_datafolder

from curate.core.atomic import write_atomic, write_json_atomic
from curate.core.errors import CurateError

from ..config import ExecutorConfig
from ..layout import STATE_FILE
from ..plan import Job, Plan
from ..stage_entries import Resources
from .base import ExecutorKind, Launched, TaskLogging, register_kind

JOBS_FILE = "slurm_jobs.json"
CONFIG_COPY = "curate_config.yaml"
_FAILED = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def _sbatch_id(output: str) -> str:
    return output.strip().split()[-1]


def _stats_job_script(plan: Plan, config_path: str) -> str:
    s = plan.config.executor.slurm
    logs = get_datafolder(plan.logging_dir).resolve_paths("slurm_logs")
    os.makedirs(logs, exist_ok=True)
    args: dict[str, Any] = {
        "job-name": f"{s.job_name}-stats",
        "partition": s.partition,
        "time": s.time,
        "cpus-per-task": 1,
        "mem-per-cpu": slurm_mem(s.mem_per_cpu_gb),
        "output": posixpath.join(logs, "stats_%j.out"),
        "error": posixpath.join(logs, "stats_%j.out"),
        **s.sbatch_args,
    }
    if s.qos:
        args["qos"] = s.qos
    lines = ["#!/bin/bash"] + [f"#SBATCH --{k}={v}" if v != "" else f"#SBATCH --{k}" for k, v in args.items()]
    env = slurm_env_command(s)
    if env:
        lines.append(env)
    # `curate stats` exits 1 for an incomplete run; the job itself succeeded if it wrote stats.json
    lines += [f"cd {os.getcwd()}", f"python -m curate.pipeline.cli stats {config_path}", "test $? -le 1"]
    return "\n".join(lines) + "\n"


def submit(plan: Plan, executors: list[Any]) -> list[str]:
    """Submit every job of the plan and the stats job; returns the Slurm job ids (none when all is done)."""
    if subprocess.run(["which", "sbatch"], capture_output=True).returncode != 0:
        raise CurateError(
            "executor.kind is slurm but `sbatch` is not on PATH; run on a Slurm login node or use --executor local"
        )
    try:
        executors[-1].run()  # datatrove launches the dependency chain from the last job backwards
    except subprocess.CalledProcessError as e:
        raise CurateError(
            f"sbatch failed (exit {e.returncode}): {(e.output or b'').decode(errors='replace').strip()}; "
            "check executor.slurm (partition, qos, sbatch_args)"
        ) from None
    ids = [str(e.job_id) for e in executors if e.job_id not in (None, -1, "-1")]
    if not ids:
        return []
    logs = get_datafolder(plan.logging_dir)
    # the stats job re-reads the exact config this run used (overrides and ${ENV} already applied)
    write_atomic(logs, CONFIG_COPY, yaml.safe_dump(plan.config.model_dump(mode="json"), sort_keys=False))
    config_path = logs.resolve_paths(CONFIG_COPY)
    stats_id = launch_slurm_job(_stats_job_script(plan, config_path), _sbatch_id, f"--dependency=afterany:{ids[-1]}")
    ids.append(str(stats_id))
    write_json_atomic(
        logs, JOBS_FILE, {"jobs": ids, "names": [j.name for j in plan.jobs] + ["stats"], "submitted": time.time()}
    )
    return ids


def submitted_wall(plan: Plan) -> float:
    """Seconds since the last submission of this run (plus what earlier segments took), for stats.json."""
    total = 0.0
    work = get_datafolder(plan.work_dir)
    if work.isfile(STATE_FILE):
        with work.open(STATE_FILE, "rt") as f:
            total += float(json.load(f).get("wall_s", 0))
    logs = get_datafolder(plan.logging_dir)
    if logs.isfile(JOBS_FILE):
        with logs.open(JOBS_FILE, "rt") as f:
            total += time.time() - float(json.load(f).get("submitted", time.time()))
    return total


def _squeue(ids: list[str]) -> list[tuple[str, str, str]]:
    r = subprocess.run(["squeue", "-h", "-o", "%i|%T|%r", "-j", ",".join(ids)], capture_output=True, text=True)
    if r.returncode != 0:
        if "Invalid job id" in r.stderr:
            return []  # every job has already left slurmctld's memory
        raise CurateError(f"squeue failed: {r.stderr.strip()}")
    return [tuple(line.split("|", 2)) for line in r.stdout.splitlines() if line.strip()]  # type: ignore[misc]


def job_states(ids: list[str]) -> dict[str, str]:
    """Final (or current) state of every array task of these jobs, from `scontrol show job`."""
    states: dict[str, str] = {}
    for jid in ids:
        r = subprocess.run(["scontrol", "-o", "show", "job", jid], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            key = fields.get("JobId", jid)
            if fields.get("ArrayTaskId"):
                key = f"{fields.get('ArrayJobId', jid)}_{fields['ArrayTaskId']}"
            states[key] = fields.get("JobState", "UNKNOWN")
    return states


def wait_for_jobs(ids: list[str], poll_s: float = 2.0, timeout_s: float | None = None) -> dict[str, str]:
    """Block until every job has left the queue. Jobs whose dependency failed are cancelled, not waited for."""
    start = time.time()
    while True:
        rows = _squeue(ids)
        if not rows:
            break
        stuck = sorted({jid.split("_")[0] for jid, _state, reason in rows if reason == "DependencyNeverSatisfied"})
        if stuck:
            # an earlier job failed (afterok); without kill_invalid_depend these would wait forever
            subprocess.run(["scancel", *stuck], capture_output=True)
        if timeout_s is not None and time.time() - start > timeout_s:
            raise CurateError(f"Slurm jobs {', '.join(ids)} still queued after {timeout_s:.0f} s")
        time.sleep(poll_s)
    return job_states(ids)


def failed(states: dict[str, str]) -> list[str]:
    return [k for k, v in states.items() if v.split()[0] in _FAILED]


class CurateSlurmExecutor(TaskLogging, SlurmPipelineExecutor):
    """datatrove's Slurm executor without its per-job `merge_stats` job.

    curate merges the stats of every job itself (`curate stats`, submitted by `curate run` as one
    final dependent job), so the extra job per stage would only add queue entries, and with
    `afterok` it would stay pending forever when a task fails.
    """

    def launch_merge_stats(self) -> None:
        return None

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        args = super().get_sbatch_args(max_array)
        # datatrove writes f"{mem_per_cpu_gb}G": "2.0G" from a float config value, which sbatch rejects
        args["mem-per-cpu"] = slurm_mem(self.mem_per_cpu_gb)
        return args


def slurm_mem(gb: float) -> str:
    """Memory in the form sbatch accepts: whole megabytes."""
    return f"{max(1, int(round(gb * 1024)))}M"


def slurm_env_command(s: Any) -> str | None:
    """The shell line that makes `launch_pickled_pipeline` and `python -m curate...` work in a job.

    `env_command` wins; `venv_path` may name the virtualenv folder or its `bin/activate`; with
    neither, jobs activate the virtualenv `curate` itself runs from (if any), so a plain
    `curate run` from a project `.venv` works on a shared filesystem with no extra key.
    """
    if s.env_command:
        return s.env_command
    if s.venv_path:
        act = s.venv_path
        if os.path.isdir(act):
            act = os.path.join(act, "bin", "activate")
        return f"source {act}"
    if sys.prefix != sys.base_prefix and os.path.isfile(os.path.join(sys.prefix, "bin", "activate")):
        return f"source {os.path.join(sys.prefix, 'bin', 'activate')}"
    return None


def _with_plugins(env_command: str | None) -> str | None:
    """Slurm jobs start fresh: file plugins' folders go on PYTHONPATH so their stages unpickle there."""
    from curate.core.plugins import worker_pythonpath

    path = worker_pythonpath()
    if path is None:
        return env_command
    return "; ".join(c for c in (env_command, f"export PYTHONPATH={path}") if c)


def _slurm_kwargs(ex: ExecutorConfig, job: Job, name: str) -> dict[str, Any]:
    s = ex.slurm
    r = job.resources or Resources()
    kw: dict[str, Any] = dict(
        tasks=job.tasks,
        workers=job.workers,
        time=r.time or s.time,
        partition=r.partition or s.partition,
        cpus_per_task=r.cpus_per_task or s.cpus_per_task,
        mem_per_cpu_gb=r.mem_per_cpu_gb or s.mem_per_cpu_gb,
        gpus_per_task=r.gpus_per_task,
        job_name=f"{s.job_name}-{name}",
        sbatch_args=dict(s.sbatch_args),
        max_array_size=s.max_array_size,
        venv_path=s.venv_path,
        env_command=_with_plugins(slurm_env_command(s)),
    )
    if s.qos:
        kw["qos"] = s.qos
    else:
        # datatrove writes `--qos=normal` by default; many clusters have no such QOS
        kw["qos"] = ""
    return kw


@register_kind
class SlurmKind(ExecutorKind):
    name = "slurm"

    def build(self, plan: Plan, index: int, job: Job, depends: PipelineExecutor | None) -> PipelineExecutor:
        return CurateSlurmExecutor(
            pipeline=job.steps,
            logging_dir=plan.job_logging_dir(index),
            depends=depends,
            skip_completed=plan.config.executor.skip_completed,
            **_slurm_kwargs(plan.config.executor, job, f"{index:02d}-{job.name}"),
        )

    def launch(self, plan: Plan, executors: list[PipelineExecutor], wait: bool) -> Launched:
        ids = submit(plan, executors)
        if wait and ids:
            wait_for_jobs(ids)
            return Launched(finished=True, info={"slurm_jobs": ids})
        if not ids:  # nothing was left to run
            return Launched(finished=True)
        return Launched(
            finished=False,
            info={"slurm_jobs": ids},
            notice=f"submitted to Slurm (jobs {', '.join(ids)}); follow with `squeue`; stats.json is written when "
            "the last job ends",
        )
