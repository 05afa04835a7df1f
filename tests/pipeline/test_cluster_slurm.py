"""`curate run` on a real one-node Slurm cluster: array jobs, a dependent job with its own resources,
the stats job, `--wait`, and resume after `scancel`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from curate_testing import cluster_config, output_rows

pytestmark = pytest.mark.slow


def slurm_config(out: Path, tmp: Path, **kw) -> Path:
    c = cluster_config(out, kind="slurm", **kw)
    c["executor"]["slurm"] = {
        "partition": "debug",
        "time": "0:20:00",
        "mem_per_cpu_gb": 1,
        "venv_path": sys.prefix,
        "job_name": "ct",
    }
    path = tmp / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(c))
    return path


def submit_one_task_at_a_time(out: Path, tmp: Path, env: dict, *extra_stages: dict) -> tuple[Path, list[str], Path]:
    """Submit the first-stage config as 4 tasks run one at a time (array %1); returns the config file,
    the submitted job ids and the main job's completion-marker folder."""
    cfg = slurm_config(out, tmp, tasks=4, refine_job=False)
    c = yaml.safe_load(cfg.read_text())
    c["executor"]["workers"] = 1
    c["stages"] += list(extra_stages)
    cfg.write_text(yaml.safe_dump(c))
    r = curate(["run", str(cfg), "--no-progress"], env, timeout=60)
    assert r.returncode == 0, r.stderr
    jobs = json.loads((Path(f"{out}.work") / "logs" / "slurm_jobs.json").read_text())["jobs"]
    return cfg, jobs, Path(f"{out}.work") / "logs" / "00_main" / "completions"


def curate(args: list[str], env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "curate.pipeline.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def scontrol(job: str, env: dict) -> list[dict[str, str]]:
    out = subprocess.run(["scontrol", "-o", "show", "job", job], env=env, capture_output=True, text=True).stdout
    return [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in out.splitlines()]


def wait_gone(jobs: list[str], env: dict, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while subprocess.run(
        ["squeue", "-h", "-j", ",".join(jobs)], env=env, capture_output=True, text=True
    ).stdout.strip():
        assert time.time() < deadline, f"jobs {jobs} still queued"
        time.sleep(1)


def test_slurm_run_matches_local_run(slurm_cluster, local_reference, tmp_path: Path):
    env = slurm_cluster
    out = tmp_path / "slurm"
    cfg = slurm_config(out, tmp_path)
    r = curate(["run", str(cfg), "--no-progress"], env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "submitted to Slurm" in r.stderr  # submits and returns
    jobs = json.loads((Path(f"{out}.work") / "logs" / "slurm_jobs.json").read_text())["jobs"]
    assert len(jobs) == 3  # main array job, refine job, stats job
    main_id, refine_id, stats_id = jobs

    wait_gone(jobs, env)
    # the CPU stage ran as an array job of 2 tasks, the refine stage as its own job with its resources
    main_tasks = scontrol(main_id, env)
    assert sorted(t["ArrayTaskId"] for t in main_tasks) == ["0", "1"]
    assert all(t["JobState"] == "COMPLETED" for t in main_tasks)
    refine = scontrol(refine_id, env)
    assert [t["JobState"] for t in refine] == ["COMPLETED"] and refine[0]["NumCPUs"] == "1"
    assert refine[0]["JobName"] == "ct-01-refine" and main_tasks[0]["JobName"] == "ct-00-main"
    # afterok: the refine job started only after every main task had ended
    assert refine[0]["StartTime"] >= max(t["EndTime"] for t in main_tasks)
    stats_job = scontrol(stats_id, env)
    assert stats_job[0]["JobState"] == "COMPLETED" and stats_job[0]["StartTime"] >= refine[0]["EndTime"]
    script = (Path(f"{out}.work") / "logs" / "01_refine" / "launch_script.slurm").read_text()
    assert "--cpus-per-task=1" in script and "--array=0-0" in script and "launch_pickled_pipeline" in script

    # the stats job merged every task's stats into stats.json
    stats = json.loads((out / "stats.json").read_text())
    assert stats["complete"] and stats["conserved"]
    labels = [s["label"] for s in stats["stages"] if not s.get("plumbing")]
    assert labels[:2] == ["read", "length_filter"] and labels[2].startswith("refine")
    assert next(s for s in stats["stages"] if s["label"].startswith("refine"))["job"] == "refine"

    ref_dir, ref_rows = local_reference
    assert output_rows(out) == ref_rows and len(ref_rows) > 1000
    ref_stats = json.loads((ref_dir / "stats.json").read_text())
    strip = lambda st: [{k: v for k, v in s.items() if k not in ("time_s", "extra")} for s in st["stages"]]  # noqa: E731
    assert strip(stats) == strip(ref_stats)


def test_slurm_scancel_then_rerun_with_wait(slurm_cluster, local_reference, tmp_path: Path):
    env = slurm_cluster
    out = tmp_path / "slurm-resume"
    # 4 tasks one at a time (array %1), so cancelling part-way leaves finished and unfinished tasks
    cfg, jobs, completions = submit_one_task_at_a_time(out, tmp_path, env)
    deadline = time.time() + 120
    while not (completions.is_dir() and len(list(completions.iterdir())) >= 1):
        assert time.time() < deadline, "no task completed"
        time.sleep(0.2)
    subprocess.run(["scancel", *jobs], env=env, check=True)
    wait_gone(jobs, env)
    done_before = sorted(p.name for p in completions.iterdir())
    assert 1 <= len(done_before) < 4, done_before
    marker_times = {n: (completions / n).stat().st_mtime_ns for n in done_before}

    r = curate(["run", str(cfg), "--no-progress", "--wait"], env)
    assert r.returncode == 0, r.stderr
    assert "curate run 'cluster'" in r.stderr  # --wait prints the summary
    # only the unfinished ranks were submitted again; finished ones were not touched
    rerun = json.loads((Path(f"{out}.work") / "logs" / "00_main" / "ranks_to_run.json").read_text())
    assert rerun == [r for r in range(4) if f"{r:05d}" not in done_before]
    assert {n: (completions / n).stat().st_mtime_ns for n in done_before} == marker_times
    assert len(list(completions.iterdir())) == 4

    rows = output_rows(out)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["complete"] and stats["conserved"]
    assert len(rows) == len(set(rows)) == stats["output_docs"]
    assert not list(out.rglob("*.partial"))
    # same documents as the local run after its first stage (no refine job here)
    assert rows == local_first_stage_rows(tmp_path)


def local_first_stage_rows(tmp_path: Path) -> list[tuple]:
    from curate.pipeline import parse_config, run_config

    out = tmp_path / "local-first-stage"
    run_config(parse_config(cluster_config(out, refine_job=False)), progress=False)
    return output_rows(out)


def test_slurm_failed_task_with_wait(slurm_cluster, failing_input, tmp_path: Path):
    """on_error: fail on Slurm: the task fails, the dependent refine job is cancelled (its afterok can
    never be met), the stats job still runs, and `--wait` exits 1 with an incomplete summary."""
    env = slurm_cluster
    out = tmp_path / "slurm-fail"
    cfg = slurm_config(out, tmp_path)
    c = yaml.safe_load(cfg.read_text())
    c["input"] = {"format": "jsonl", "path": str(failing_input)}
    c["on_error"] = "fail"
    cfg.write_text(yaml.safe_dump(c))
    r = curate(["run", str(cfg), "--no-progress", "--wait"], env)
    assert r.returncode == 1, r.stderr
    assert "INCOMPLETE" in r.stderr and "Traceback" not in r.stderr
    main_id, refine_id, stats_id = json.loads((Path(f"{out}.work") / "logs" / "slurm_jobs.json").read_text())["jobs"]
    states = sorted(t["JobState"] for t in scontrol(main_id, env))
    assert states == ["COMPLETED", "FAILED"]
    assert [t["JobState"] for t in scontrol(refine_id, env)] == ["CANCELLED"]
    assert [t["JobState"] for t in scontrol(stats_id, env)] == ["COMPLETED"]
    stats = json.loads((out / "stats.json").read_text())
    assert not stats["complete"] and [j["tasks_completed"] for j in stats["jobs"]] == [1, 0]
    log = "".join(p.read_text() for p in (Path(f"{out}.work") / "logs" / "00_main" / "logs").glob("task_*.log"))
    assert f"bad input in {failing_input / 'b.jsonl'}, record 2: bad_json" in log
    assert not list((out / "data").glob("*.parquet")) if (out / "data").is_dir() else True


def test_slurm_requeue_of_a_running_task(slurm_cluster, tmp_path: Path):
    """Pre-emption: Slurm requeues a running array task (`scontrol requeue`, what a partition with
    PreemptMode=REQUEUE does to a preempted job). The task starts again from scratch on the same rank,
    its first attempt published nothing, finished ranks are not redone, and the output equals a local
    run of the same config."""
    from curate.pipeline import parse_config, run_config

    env = slurm_cluster
    out = tmp_path / "slurm-requeue"
    # 4 tasks one at a time, each a few seconds (ProX boilerplate backend), so one is caught running
    cfg, jobs, completions = submit_one_task_at_a_time(
        out, tmp_path, env, {"stage": "prox_refine", "backend": "boilerplate"}
    )
    c = yaml.safe_load(cfg.read_text())
    deadline = time.time() + 150
    victim = None
    while victim is None:
        assert time.time() < deadline, "no task was seen running after another had finished"
        running = subprocess.run(
            ["squeue", "-h", "-t", "R", "-j", jobs[0], "-o", "%i"], env=env, capture_output=True, text=True
        ).stdout.split()
        if running and completions.is_dir() and any(completions.iterdir()):
            victim = running[0]
            done_before = {p.name: p.stat().st_mtime_ns for p in completions.iterdir()}
            subprocess.run(["scontrol", "requeue", victim], env=env, check=True)
        time.sleep(0.1)
    t0 = time.time()
    wait_gone(jobs, env, timeout=240)
    print(f"requeued {victim}; jobs gone {time.time() - t0:.0f} s later")

    task = scontrol(victim, env)[0]
    assert int(task["Restarts"]) >= 1 and task["JobState"] == "COMPLETED"
    assert {n: (completions / n).stat().st_mtime_ns for n in done_before} == done_before  # not redone
    assert len(list(completions.iterdir())) == 4
    stats = json.loads((out / "stats.json").read_text())
    assert stats["complete"] and stats["conserved"]
    rows = output_rows(out)
    assert len(rows) == len({repr(r) for r in rows}) == stats["output_docs"]  # nothing published twice
    assert not list(out.rglob("*.partial"))

    local = dict(
        c,
        output=dict(c["output"], path=str(tmp_path / "local-requeue")),
        executor={"kind": "local", "tasks": 4, "workers": 2},
    )
    run_config(parse_config(local), progress=False)
    assert rows == output_rows(tmp_path / "local-requeue")
