"""Resume after SIGKILL: only unfinished tasks rerun, output equals an uninterrupted run's, partial files
never show up as output; a changed config keeps the jobs it does not touch and redoes the rest."""

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
from curate_testing import SAMPLE, cluster_config, output_rows

from curate.pipeline import parse_config, run_config

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
    logs = Path(f"{out}.work") / "logs" / "00_main"
    data, completions = out / "data", logs / "completions"

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
    stats_files = {n: (logs / "stats" / f"{n}.json").read_bytes() for n in finished}

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert done() == {f"{i:05d}" for i in range(TASKS)}
    # finished tasks were not run again: their markers and stats files are untouched
    assert {n: (completions / n).stat().st_mtime_ns for n in finished} == stamps
    assert {n: (logs / "stats" / f"{n}.json").read_bytes() for n in finished} == stats_files
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
    handoff = Path(f"{out}.work") / "intermediate" / "00_main_to_x" / ".00000.parquet.partial"
    handoff.parent.mkdir(parents=True)
    handoff.write_bytes(b"junk")
    stats = run_config(parse_config(c), progress=False)
    assert stats["complete"] and not stale.exists() and not handoff.exists()
    assert sorted(p.name for p in (out / "data").iterdir()) == ["00000.parquet", "00001.parquet"]
    assert len(output_rows(out)) == stats["output_docs"]


def _markers(out: Path, job: str) -> dict[str, int]:
    folder = Path(f"{out}.work") / "logs" / job / "completions"
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} if folder.is_dir() else {}


def test_a_changed_config_keeps_the_jobs_it_does_not_touch(tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "o"
    base = cluster_config(out)  # job 0: read + length_filter; job 1 ("refine"): its own resources
    first = run_config(parse_config(base), progress=False)
    main0, refine0 = _markers(out, "00_main"), _markers(out, "01_refine")
    assert main0 and refine0

    # how and where tasks run may change: nothing is redone, the recorded wall time stays
    harmless = json.loads(json.dumps(base))
    harmless["executor"]["workers"] = 1
    harmless["stages"][1]["resources"]["cpus_per_task"] = 2
    harmless["stages"][1]["resources"]["workers"] = 1
    capsys.readouterr()
    again = run_config(parse_config(harmless), progress=False)
    assert "nothing to do" in capsys.readouterr().err
    assert again["wall_s"] == first["wall_s"] > 0.1
    assert _markers(out, "00_main") == main0 and _markers(out, "01_refine") == refine0

    # a change in the second job's stage keeps job 0's finished tasks and redoes job 1 only
    late = json.loads(json.dumps(base))
    late["stages"][1]["resources"]["tasks"] = 2
    stats = run_config(parse_config(late), progress=False)
    err = capsys.readouterr().err
    assert "stage 'refine' changed" in err and "redoing jobs 1 refine" in err and "kept: jobs 0" in err
    assert _markers(out, "00_main") == main0
    assert sorted(_markers(out, "01_refine")) == ["00000", "00001"]
    fresh = run_config(
        parse_config({**late, "output": {**late["output"], "path": str(tmp_path / "fresh")}}), progress=False
    )
    assert output_rows(out) == output_rows(tmp_path / "fresh")
    keys = ("label", "job", "docs_in", "docs_out", "dropped", "chars_in", "chars_out", "conserved")
    counts = lambda st: [{k: s.get(k) for k in keys} for s in st["stages"]]  # noqa: E731 (timings differ)
    assert counts(stats) == counts(fresh)

    # output settings only touch the job that writes the output
    cols = json.loads(json.dumps(late))
    cols["output"]["metadata_columns"] = []
    run_config(parse_config(cols), progress=False)
    assert "redoing jobs 1 refine" in capsys.readouterr().err and _markers(out, "00_main") == main0
    assert "url" not in pq.read_schema(next((out / "data").glob("*.parquet"))).names

    # what job 0 reads or does redoes everything, and says why (each change on top of the one before)
    changed = json.loads(json.dumps(cols))
    for why, change in [
        ("now has 3 tasks", lambda c: c["executor"].update(tasks=3)),
        ("the input or on_error changed", lambda c: c["input"].update(glob="c4-*.jsonl.gz")),
        ("stage 'length_filter' changed", lambda c: c["stages"][0].update(min_words=6)),
    ]:
        change(changed)
        st = run_config(parse_config(changed), progress=False)
        err = capsys.readouterr().err
        assert why in err and "redoing jobs 0 main, 1 refine" in err, err
        assert st["complete"] and st["conserved"] and len(output_rows(out)) == st["output_docs"]
