"""A failed task reads the same in a job of 1 task or many: one line naming the job, the stage, the exception
type and message and the log, exit 2, and no "rerun to retry" for an error that will happen again.
`on_stage_error: skip` drops the document a stage raises on instead of failing the task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# a user stage that raises on one document: the kind of bug a 10,000-task run must survive with skip
PLUGIN = """
from curate.core.stage_api import CurateFilter, StrictModel, register_stage


class Options(StrictModel):
    word: str = "BOOM"


@register_stage("explode_on", Options, "raise on documents holding a word")
class ExplodeOn(CurateFilter):
    def __init__(self, opts):
        super().__init__()
        self.word = opts.word

    def filter(self, doc):
        if self.word in doc.text:
            raise ValueError(f"cannot handle {doc.id}")
        return True
"""


def write_input(folder: Path, files: int) -> Path:
    folder.mkdir(parents=True)
    for f in range(files):
        with open(folder / f"part-{f}.jsonl", "w") as fh:
            for i in range(6):
                text = "alpha beta gamma delta epsilon " * 3 + ("BOOM" if (f, i) == (0, 3) else "")
                fh.write(json.dumps({"id": f"d{f}-{i}", "text": text}) + "\n")
    return folder


def run_cli(tmp_path: Path, tasks: int, **top) -> subprocess.CompletedProcess:
    (tmp_path / "boom.py").write_text(PLUGIN)
    cfg = {
        "input": {"format": "jsonl", "path": str(write_input(tmp_path / "in", 2))},
        "output": {"path": str(tmp_path / "out"), "keep_rejected": True},
        "executor": {"tasks": tasks, "workers": 1},
        "plugins": ["boom.py"],
        "stages": [{"stage": "length_filter", "min_words": 1}, {"stage": "explode_on"}],
        **top,
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "curate.pipeline.cli", "run", str(tmp_path / "c.yaml"), "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("tasks", [1, 2])
def test_a_failed_task_is_one_line_with_job_stage_type_and_log(tmp_path: Path, tasks: int):
    proc = run_cli(tmp_path, tasks)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if "tasks failed" in x)
    assert f"job 0 (main): 1 of {tasks} tasks failed in stage explode_on: ValueError: cannot handle d0-3" in line
    assert "task_00000.log" in line and "it will fail again" in line and "retry" not in line


def test_on_stage_error_skip_drops_the_document_and_goes_on(tmp_path: Path):
    proc = run_cli(tmp_path, 2, on_stage_error="skip")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    stage = next(s for s in stats["stages"] if s["label"] == "explode_on")
    assert stage["dropped"] == {"stage_error/explode_on": 1} and stage["docs_out"] == 11 and stage["conserved"]
    assert "dropped document 'd0-3': ValueError: cannot handle d0-3" in proc.stderr
    import pyarrow.parquet as pq

    rejected = pq.read_table(tmp_path / "out" / "rejected" / "explode_on").to_pylist()
    assert [(r["id"], r["drop_reason"]) for r in rejected] == [("d0-3", "stage_error/explode_on")]


SLOW_PLUGIN = """
import time

from curate.core.stage_api import CurateFilter, StrictModel, register_stage


class Options(StrictModel):
    seconds: float = 4.0


@register_stage("sleepy", Options, "sleep once per task")
class Sleepy(CurateFilter):
    def __init__(self, opts):
        super().__init__()
        self.seconds = opts.seconds

    def filter(self, doc):
        if doc.id.endswith("-0"):
            time.sleep(self.seconds)
        return True
"""


def test_every_tasks_warnings_reach_the_console_and_a_stall_is_named(tmp_path: Path):
    inp = write_input(tmp_path / "in", 2)
    with open(inp / "part-1.jsonl", "a") as f:  # a bad record in the file task 1 reads
        f.write('{"id": "broken", "text": \n')
    (tmp_path / "sleepy.py").write_text(SLOW_PLUGIN)
    cfg = {
        "input": {"format": "jsonl", "path": str(inp)},
        "output": {"path": str(tmp_path / "out")},
        "executor": {"tasks": 2, "workers": 2, "stall_notice_s": 1},
        "plugins": ["sleepy.py"],
        "stages": [{"stage": "sleepy"}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "curate.pipeline.cli", "run", str(tmp_path / "c.yaml"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "job main task 1 | skipping bad input in" in proc.stderr and "part-1.jsonl, record 6" in proc.stderr
    assert "no task has finished for 1 s: waiting for job 0 (main) tasks 0, 1" in proc.stderr
