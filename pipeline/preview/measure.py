"""Run a config on a sample folder, locally in this process, and measure it: stats, CPU and peak memory.

Tasks run here one at a time (executor local, one task, one worker), so the process's own CPU time is
the run's CPU time and `ru_maxrss` its peak memory; a stage's share of the CPU is its share of the
step time datatrove measured (`time_s` in stats.json). The real output folder is never touched: output,
work folder and logs all go under the scratch folder.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import CurateConfig, load_config


@dataclass
class Measured:
    stats: dict[str, Any]
    cpu_s: float  # user + system CPU of this process (and any worker it started) during the run
    wall_s: float
    peak_rss_bytes: int  # the process's peak resident memory so far
    output_bytes: int  # data/ Parquet written
    config: CurateConfig


def preview_overrides(input_cfg: Any, sample_folder: str, scratch: str) -> dict[str, Any]:
    """The keys that point a config at the sample and keep every write inside `scratch`."""
    o: dict[str, Any] = {
        "input.path": sample_folder,
        "input.glob": None,
        "input.limit": -1,
        "output.path": os.path.join(scratch, "out"),
        "output.work_dir": os.path.join(scratch, "out.work"),
        "output.keep_rejected": True,
        "executor.kind": "local",
        "executor.tasks": 1,
        "executor.workers": 1,
        "executor.logging_dir": None,
        "executor.skip_completed": False,
    }
    if hasattr(input_cfg, "compression"):
        o["input.compression"] = "infer"  # the sample of a compressed input is written uncompressed
    return o


def _rusage_cpu() -> tuple[float, int]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return cpu, max(me.ru_maxrss, kids.ru_maxrss) * 1024  # Linux: KiB


def run_on_sample(config_path: str, overrides: dict[str, Any], stages: list[dict[str, Any]] | None = None) -> Measured:
    """Run the config (its first stages only, with `stages`) with `overrides` and measure it."""
    from ..logs import quiet_console
    from ..run import run_config

    if stages is not None:
        overrides = {**overrides, "stages": stages}
    cfg = load_config(config_path, overrides)
    cpu0, _ = _rusage_cpu()
    t0 = time.time()
    with quiet_console():
        stats = run_config(cfg, kind="local", progress=False)
    cpu1, peak = _rusage_cpu()
    data = Path(cfg.output.path) / "data"
    out_bytes = sum(f.stat().st_size for f in data.glob("*.parquet")) if data.is_dir() else 0
    return Measured(stats, cpu1 - cpu0, time.time() - t0, peak, out_bytes, cfg)
