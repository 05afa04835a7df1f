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
import time
from typing import Any

import yaml
from datatrove.executor.slurm import launch_slurm_job
from datatrove.io import get_datafolder

from curate.core.atomic import write_atomic, write_json_atomic
from curate.core.errors import CurateError

from .executors import slurm_env_command, slurm_mem
from .plan import Plan

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
    from .resume import STATE_FILE

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
