"""Resume after SIGKILL: only unfinished tasks rerun, output equals an uninterrupted run's, partial files
never show up as output; config changes that would mix results are refused, harmless ones are not."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import SAMPLE, cluster_config, output_rows

from curate.pipeline import ConfigError, parse_config, run_config

TASKS = 12


def replicated_input(folder: Path, copies: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(copies):
        for f in sorted(SAMPLE.glob("*.jsonl.gz")):
            shutil.copy(f, folder / f"{i:02d}-{f.name}")
    return folder


def resume_config(inp: Path, out: Path) -> dict:
    return {
        "name": "resume",
        "input": {"format": "jsonl", "path": str(inp)},
        "output": {"path": str(out), "keep_rejected": True, "metadata_columns": ["url"]},
        "executor": {"kind": "local", "tasks": TASKS, "workers": 1},
        "stages": [{"stage": "length_filter", "min_words": 30}],
    }


def rejected_rows(out: Path) -> list:
    rows = []
    for f in sorted((out / "rejected").rglob("[0-9]*.parquet")):
        rows += [tuple(sorted(r.items())) for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=repr)


@pytest.mark.slow
def test_sigkill_then_rerun_runs_only_unfinished_tasks(tmp_path: Path):
    inp = replicated_input(tmp_path / "in", 6)
    out = tmp_path / "out"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(resume_config(inp, out)))
    cmd = [sys.executable, "-m", "curate.pipeline.cli", "run", str(cfg), "--no-progress"]
    data, completions = out / "data", out / "logs" / "00_main" / "completions"

    def done() -> set[str]:
        return {p.name for p in completions.iterdir()} if completions.is_dir() else set()

    def unfinished_partial() -> list[Path]:
        ps = list(data.glob(".*.partial")) if data.is_dir() else []
        return [p for p in ps if p.name[1:6] not in done()]

    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # kill while a task is half-way through writing its output, after some tasks have finished
    while not (len(done()) >= 2 and unfinished_partial()):
        assert proc.poll() is None, "the run ended before it could be killed part-way"
        assert time.time() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    finished = done()
    assert 2 <= len(finished) < TASKS
    # the half-written file is hidden: what a reader of data/ sees is only complete Parquet files
    assert list(data.glob(".*.partial"))
    visible = sorted(data.glob("[0-9]*.parquet"))
    for f in visible:
        pq.read_metadata(f)  # complete footer
    stamps = {n: (completions / n).stat().st_mtime_ns for n in finished}
    stats_files = {n: (out / "logs" / "00_main" / "stats" / f"{n}.json").read_bytes() for n in finished}

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert done() == {f"{i:05d}" for i in range(TASKS)}
    # finished tasks were not run again: their markers and stats files are untouched
    assert {n: (completions / n).stat().st_mtime_ns for n in finished} == stamps
    assert {n: (out / "logs" / "00_main" / "stats" / f"{n}.json").read_bytes() for n in finished} == stats_files
    assert not list(out.rglob("*.partial"))

    ref = tmp_path / "ref"
    ref_stats = run_config(parse_config(resume_config(inp, ref)), progress=False)
    rows = output_rows(out)
    assert rows == output_rows(ref)
    assert len(rows) == len(set(rows)) == ref_stats["output_docs"]
    assert rejected_rows(out) == rejected_rows(ref) and rejected_rows(ref)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["complete"] and stats["conserved"]
    assert stats["stages"] == [dict(s, time_s=stats["stages"][i]["time_s"]) for i, s in enumerate(ref_stats["stages"])]


def test_rerun_after_killed_task_overwrites_its_partial_file(tmp_path: Path):
    """A stale `.NAME.partial` (from a killed task) is removed and the task's real output is complete."""
    out = tmp_path / "o"
    c = cluster_config(out, refine_job=False)
    stale = out / "data" / ".00001.parquet.partial"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"PAR1 half a file")
    handoff = out / "_work" / "00_main_to_x" / ".00000.parquet.partial"
    handoff.parent.mkdir(parents=True)
    handoff.write_bytes(b"junk")
    stats = run_config(parse_config(c), progress=False)
    assert stats["complete"] and not stale.exists() and not handoff.exists()
    assert sorted(p.name for p in (out / "data").iterdir()) == ["00000.parquet", "00001.parquet"]
    assert len(output_rows(out)) == stats["output_docs"]


def test_config_changes_that_invalidate_finished_tasks_are_refused(tmp_path: Path):
    out = tmp_path / "o"
    base = cluster_config(out)
    run_config(parse_config(base), progress=False)

    # how and where tasks run may change between runs
    harmless = json.loads(json.dumps(base))
    harmless["executor"]["workers"] = 1
    harmless["stages"][1]["resources"]["cpus_per_task"] = 2
    harmless["stages"][1]["resources"]["workers"] = 1
    assert run_config(parse_config(harmless), progress=False)["complete"]

    # what each task reads or writes may not
    for key, change in [
        ("tasks", lambda c: c["executor"].update(tasks=3)),
        ("input", lambda c: c["input"].update(glob="c4-*.jsonl.gz")),
        ("stages", lambda c: c["stages"][0].update(min_words=6)),
        ("stages", lambda c: c["stages"][1]["resources"].update(tasks=2)),
        ("on_error", lambda c: c.update(on_error="fail")),
        ("output", lambda c: c["output"].update(metadata_columns=[])),
    ]:
        changed = json.loads(json.dumps(base))
        change(changed)
        with pytest.raises(ConfigError, match=rf"different config \(changed: {key}\).*new output.path"):
            run_config(parse_config(changed), progress=False)
