"""The equivalence matrix: every path to a dataset gives the dataset a fresh local run gives.

The oracle is a fresh local run of a config using every built-in stage kind that runs here, over
real web text in which each dedup stage really drops or cuts (curate_testing.equivalence), with a
0-byte and an empty gzip file among the inputs. What is compared is the multiset of data/ and
rejected/ rows (every column), the data/ schema and the per-stage counts of stats.json. Paths:

- 1 task against 3 tasks (dedup keeps the same "first copy"; ESD's shards are per input file);
- SIGKILL at a random point of each job, then a rerun (one chain of kills, one per job);
- each stage's options changed in turn on a finished run, then rerun, against a fresh run of the
  changed config (the resume keeps the jobs before the change and their side-job data);
- local against Ray against Slurm (in test_cluster_ray.py / test_cluster_slurm.py, against `oracle`);
- everything dropped at a stage (every later job gets an empty handoff): exit 0, a zero-row data
  file with the full schema, the same result with 1 and 3 tasks.

Runs are shared: the oracle is computed once per session.
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from curate_testing.equivalence import build_corpus, config, snapshot

from curate.pipeline import parse_config, run_config

pytestmark = pytest.mark.slow


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    run_config(parse_config(copy.deepcopy(cfg)), progress=False)
    return snapshot(Path(cfg["output"]["path"]))


def cli(cfg: dict[str, Any], folder: Path, *args: str) -> subprocess.CompletedProcess:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "curate.pipeline.cli", "run", str(path), "--no-progress", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("equivalence") / "in")


@pytest.fixture(scope="session")
def oracle(corpus: Path, tmp_path_factory) -> dict[str, Any]:
    """A fresh local run with 1 task: what every other path must give."""
    out = tmp_path_factory.mktemp("oracle") / "out"
    snap = run(config(corpus, out, tasks=1))
    # the corpus does what it is for: each dedup stage drops or cuts something
    assert snap["counts"]["exact_doc_dedup"]["dropped"]
    assert snap["counts"]["minhash_dedup"]["dropped"]
    esd = snap["counts"]["exact_substring_dedup"]
    assert esd["chars_out"] < esd["chars_in"]
    return snap


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["counts"] == want["counts"]
    assert got["schema"] == want["schema"]
    assert len(got["data"]) == len(want["data"])
    assert got["data"] == want["data"]
    assert got["rejected"] == want["rejected"]


def test_three_tasks_equal_one(corpus: Path, oracle: dict[str, Any], tmp_path: Path):
    assert_same(run(config(corpus, tmp_path / "out", tasks=3)), oracle)


# -- each stage's options changed in turn on a finished run -----------------------------------------
# (stage index, option, new value): each change alters what the stage does on the corpus
CHANGES = [
    (0, "min_words", 150),
    (1, "normalize", "none"),
    (2, "min_length", 20),
    (3, "ngram", 3),
    (4, "params", {"dclm_min": 0.3}),
    (5, "min_words_kept", 120),
]


def test_each_stage_changed_in_turn_then_rerun(corpus: Path, oracle: dict[str, Any], tmp_path: Path):
    """One output folder lives through every change; after each rerun it equals a fresh run of that config."""
    out = tmp_path / "resumed"
    cfg = config(corpus, out, tasks=3)
    assert_same(run(cfg), oracle)
    for index, key, value in CHANGES:
        cfg["stages"][index][key] = value
        proc = cli(cfg, tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        label = cfg["stages"][index]["stage"]
        assert f"stage {label!r} changed" in proc.stderr, proc.stderr[-2000:]
        fresh = run(
            {
                **cfg,
                "output": {**cfg["output"], "path": str(tmp_path / f"fresh-{index}")},
                "executor": {**cfg["executor"], "tasks": 1, "workers": 1},
            }
        )
        assert_same(snapshot(out), fresh)


# -- SIGKILL at a random point of each job, then rerun --------------------------------------------------
def _job_state(work: Path, tasks_of: dict[str, int]) -> tuple[int, int]:
    """(index of the first job not finished, its finished tasks) from the completion markers."""
    logs = work / "logs"
    for i, (name, tasks) in enumerate(tasks_of.items()):
        done = logs / name / "completions"
        n = len(list(done.iterdir())) if done.is_dir() else 0
        if n < tasks:
            return i, n
    return len(tasks_of), 0


def test_sigkill_in_each_job_then_rerun(corpus: Path, oracle: dict[str, Any], tmp_path: Path):
    from curate.pipeline import build_plan

    out = tmp_path / "out"
    cfg = config(corpus, out, tasks=3)
    plan = build_plan(parse_config(copy.deepcopy(cfg)))
    tasks_of = {f"{i:02d}_{j.name}": j.tasks for i, j in enumerate(plan.jobs)}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "curate.pipeline.cli", "run", str(path), "--no-progress"]
    rng = random.Random(7)
    killed_in: list[int] = []
    target = 0
    while target < len(tasks_of):
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        delay = rng.uniform(0, 0.3)
        started = None
        while proc.poll() is None:
            job, _ = _job_state(Path(f"{out}.work"), tasks_of)
            if job >= target and started is None:
                started = time.time()
            if started is not None and time.time() - started >= delay:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            job, _ = _job_state(Path(f"{out}.work"), tasks_of)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_in.append(job)
            target = job + 1
        else:
            assert proc.returncode == 0, proc.stderr.read()[-2000:]
            break
    if (out / "stats.json").exists() and json.loads((out / "stats.json").read_text()).get("complete"):
        pass
    else:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(set(killed_in)) >= len(tasks_of) // 2, killed_in  # killed in most jobs, each once
    assert_same(snapshot(out), oracle)


# -- empty is a normal case ------------------------------------------------------------------------------
def _drop_all_at(cfg: dict[str, Any], stage: str) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    for s in cfg["stages"]:
        if s["stage"] == stage == "length_filter":
            s["min_words"] = 10**9
        elif s["stage"] == stage == "gneissweb_ensemble":
            s["params"] = {"dclm_min": 2.0, "cosmo_min": 2.0}
        elif s["stage"] == stage == "prox_refine":
            s["min_words_kept"] = 10**9
    return cfg


@pytest.mark.parametrize("stage", ["length_filter", "gneissweb_ensemble", "prox_refine"])
def test_everything_dropped_at_a_stage(corpus: Path, oracle: dict[str, Any], tmp_path: Path, stage: str):
    snaps = []
    for tasks in (1, 3):
        cfg = _drop_all_at(config(corpus, tmp_path / f"out{tasks}", tasks=tasks), stage)
        proc = cli(cfg, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        snaps.append(snapshot(tmp_path / f"out{tasks}"))
    one, three = snaps
    assert_same(three, one)
    assert one["data"] == [] and one["schema"] == oracle["schema"]
    files = list((tmp_path / "out1" / "data").glob("*.parquet"))
    assert files and all(pq.read_metadata(f).num_rows == 0 for f in files)
    counts = one["counts"]
    assert counts[stage]["docs_out"] == 0 and counts[stage]["docs_in"] > 0
    assert counts["write"]["docs_in"] == 0
    assert all(c["conserved"] for c in counts.values())


def test_limit_zero_reads_nothing_and_ends_well(corpus: Path, oracle: dict[str, Any], tmp_path: Path):
    proc = cli(config(corpus, tmp_path / "out", tasks=1), tmp_path, "--limit", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    snap = snapshot(tmp_path / "out")
    assert snap["data"] == [] and snap["schema"] == oracle["schema"]


# -- local against Ray against Slurm ------------------------------------------------------------------
def test_ray_equals_local(ray_local, corpus: Path, oracle: dict[str, Any], tmp_path: Path):
    """Ray with the ensemble in the config: the run ends (it used to hang after its last task) and equals."""
    start = time.time()
    snap = run(config(corpus, tmp_path / "out", tasks=3, kind="ray"))
    assert time.time() - start < 300
    assert_same(snap, oracle)


def test_slurm_equals_local(slurm_cluster, corpus: Path, oracle: dict[str, Any], tmp_path: Path):
    cfg = config(corpus, tmp_path / "out", tasks=3, kind="slurm")
    cfg["executor"]["slurm"] = {
        "partition": "debug",
        "time": "0:20:00",
        "mem_per_cpu_gb": 1,
        "venv_path": sys.prefix,
        "job_name": "eq",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "curate.pipeline.cli", "run", str(path), "--no-progress", "--wait"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=slurm_cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same(snapshot(tmp_path / "out"), oracle)
