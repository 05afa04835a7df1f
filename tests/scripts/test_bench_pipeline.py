"""scripts/bench/pipeline.py runs end to end and prints one row per stage (not a timing test).

A one-stage config on a tenth of the sample, without the baseline pass: the figures are not checked,
only that the profile is printed (a row per configured stage, the I/O and outside-tasks rows, the total)
and that its peak RSS per worker was sampled.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from curate_testing import REPO


def test_bench_pipeline_prints_a_row_per_stage(tmp_path: Path) -> None:
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(
        "name: bench\n"
        "input: {format: jsonl, path: unused, glob: '*.jsonl.gz', text_key: text, id_key: id}\n"
        "output: {path: unused-out}\n"
        "executor: {kind: local, tasks: 2, workers: 2}\n"
        "stages:\n"
        "  - {stage: length_filter, min_words: 5}\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench" / "pipeline.py"),
            "--config",
            str(cfg),
            "--scale",
            "0.1",
            "--no-baseline",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "input: 0.1x the sample" in out
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^(length_filter|read/write/handoffs|outside tasks|whole run)\b.*$", out, re.M)
    }
    assert set(rows) == {"length_filter", "read/write/handoffs", "outside tasks", "whole run"}, out
    # docs in of the stage: every non-empty record of the input (169 of the sample's 1,697, minus empty texts)
    assert re.match(r"length_filter\s+\d{2,3}\s", rows["length_filter"]), rows["length_filter"]
    assert "100%" in rows["whole run"]
    assert re.search(r"main\s+2 tasks .* worker peak RSS MiB: \d", out), out
