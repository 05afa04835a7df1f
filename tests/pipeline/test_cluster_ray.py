"""`executor.kind: ray` on a local Ray instance (2 CPUs) gives the local run's output, and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from curate_testing import cluster_config, output_rows

from curate.pipeline import parse_config, run_config

pytestmark = pytest.mark.slow


def test_ray_run_matches_local_run(ray_local, local_reference, tmp_path: Path):
    out = tmp_path / "ray"
    stats = run_config(parse_config(cluster_config(out, kind="ray")), progress=False)
    assert stats["executor"] == "ray" and stats["complete"] and stats["conserved"]
    assert [j["tasks_completed"] for j in stats["jobs"]] == [2, 1]
    ref_dir, ref_rows = local_reference
    assert output_rows(out) == ref_rows
    ref = json.loads((ref_dir / "stats.json").read_text())
    strip = lambda st: [{k: v for k, v in s.items() if k not in ("time_s", "extra")} for s in st["stages"]]  # noqa: E731
    assert strip(stats) == strip(ref)

    # switching executor between runs is allowed: the local rerun finds every task done
    again = run_config(parse_config(cluster_config(out, kind="local")), progress=False)
    assert again["complete"] and strip(again) == strip(stats)


def test_ray_failed_task_stops_the_run_with_its_error(ray_local, failing_input, tmp_path: Path):
    from curate.pipeline import CurateError

    c = cluster_config(tmp_path / "o", kind="ray")
    c["input"] = {"format": "jsonl", "path": str(failing_input)}
    c["on_error"] = "fail"
    with pytest.raises(
        CurateError,
        match=r"job 0 \(main\): 1 of 2 tasks failed in stage read: InputError: bad input in .*b.jsonl, record 2: bad_json",
    ):
        run_config(parse_config(c), progress=False)
    assert not (tmp_path / "o.work" / "logs" / "01_refine").exists()  # the dependent job never started
