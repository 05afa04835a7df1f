"""Every folder and file of a run, named once. Everything else asks `RunLayout`.

OUTPUT/                     the dataset, and only the dataset
  data/NNNNN.parquet        kept documents
  rejected/STAGE/           dropped documents (output.keep_rejected)
  README.md                 the dataset card
  stats.json                per-stage counts
  _curate_run.json          the config that made it (report, resume)
WORK/ (OUTPUT.work)         what a rerun needs, never published
  resume.json               each job's fingerprint and the folders it writes
  intermediate/             handoffs (the documents one job passes to the next: HandoffWriter /
                            HandoffReader) and what stages keep beside them: dedup side-job data,
                            checkpoints, frozen values (`work_path()`); named for all of it, not handoffs only
  logs/NN_JOB/              datatrove's completion markers, per-task stats and logs, failures/ (records of failed tasks)
  logs/slurm_jobs.json      the Slurm job ids of the last submission
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any

from datatrove.io import get_datafolder

from curate.core.errors import ConfigError

from .readers import is_remote

DATA = "data"
REJECTED = "rejected"
CARD_FILE = "README.md"
STATS_FILE = "stats.json"
RUN_FILE = "_curate_run.json"
STATE_FILE = "resume.json"
SLURM_JOBS_FILE = "slurm_jobs.json"
INTERMEDIATE = "intermediate"
LOGS = "logs"
FAILURES = "failures"  # in each job's logging folder: one record per failed task (failures.py)


def default_work_dir(output_dir: str) -> str:
    """`OUTPUT.work`, beside the dataset: handoffs, scratch data and logs never land inside the published folder."""
    output_dir = output_dir.rstrip("/")
    if "://" in output_dir and "/" not in output_dir.split("://", 1)[1]:
        raise ConfigError(
            f"output.path: {output_dir!r} is a bucket root; set output.work_dir to a folder for "
            "handoffs, scratch data and logs (e.g. s3://bucket/curate-work)"
        )
    return output_dir + ".work"


def rejected_dir(output_dir: str, label: str) -> str:
    """Where a stage's dropped documents go (`output.keep_rejected`)."""
    return posixpath.join(output_dir, REJECTED, label.replace("/", "_"))


@dataclass(frozen=True)
class RunLayout:
    output_dir: str
    work_dir: str
    logging_dir: str

    @classmethod
    def of(cls, config: Any) -> RunLayout:
        """From a config's output.path, output.work_dir and executor.logging_dir."""
        output_dir = config.output.path.rstrip("/")
        work_dir = (config.output.work_dir or default_work_dir(output_dir)).rstrip("/")
        logging_dir = (config.executor.logging_dir or posixpath.join(work_dir, LOGS)).rstrip("/")
        return cls(output_dir, work_dir, logging_dir)

    @property
    def data_dir(self) -> str:
        return posixpath.join(self.output_dir, DATA)

    def rejected_dir(self, label: str) -> str:
        return rejected_dir(self.output_dir, label)

    @property
    def intermediate_dir(self) -> str:
        return posixpath.join(self.work_dir, INTERMEDIATE)

    def job_logging_dir(self, index: int, job_name: str) -> str:
        return posixpath.join(self.logging_dir, f"{index:02d}_{job_name}")

    @property
    def stats_file(self) -> str:
        return posixpath.join(self.output_dir, STATS_FILE)


def remove_stale_partials(layout: RunLayout) -> int:
    """Delete `.NAME.partial` files a killed task left behind (output, rejected/ and handoffs).

    They are invisible to every reader (hidden names, handoff readers match `[0-9]*.parquet`) and
    a rerun of their task overwrites them; removing them keeps the output folder clean. Only for
    runs whose every task this process runs (on Slurm a task of an earlier submission may still be writing).
    """
    n = 0
    for folder in (layout.output_dir, layout.work_dir):
        if is_remote(folder):
            continue
        for root, _dirs, files in os.walk(folder):
            for f in files:
                if f.startswith(".") and f.endswith(".partial"):
                    os.remove(os.path.join(root, f))
                    n += 1
    return n


def remove_work_dir(work_dir: str) -> bool:
    df = get_datafolder(work_dir)
    if not df.exists(""):
        return False
    df.rm("", recursive=True)
    return True
