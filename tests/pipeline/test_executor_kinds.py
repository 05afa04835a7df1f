"""An executor kind is one module: a class registered with `register_kind` is usable as `executor.kind` with
no other change, and an unknown kind is refused naming the known ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from curate_testing import cluster_config, output_rows

from curate.pipeline import ConfigError, parse_config, run_config
from curate.pipeline.executors import KINDS, register_kind
from curate.pipeline.executors.local import LocalKind


class CountingKind(LocalKind):
    """Local execution, counting the jobs it was asked to launch (what a new kind module would hold)."""

    name = "counting"
    launched: list[int] = []

    def launch(self, plan, executors, wait):  # noqa: ANN001, ANN201
        CountingKind.launched.append(len(executors))
        return super().launch(plan, executors, wait)


def test_a_registered_kind_runs_a_config_like_local(tmp_path: Path):
    if "counting" not in KINDS:
        register_kind(CountingKind)
    stats = run_config(parse_config(cluster_config(tmp_path / "new", kind="counting")), progress=False)
    assert stats["executor"] == "counting" and stats["complete"] and CountingKind.launched == [2]
    run_config(parse_config(cluster_config(tmp_path / "local", kind="local")), progress=False)
    assert output_rows(tmp_path / "new") == output_rows(tmp_path / "local")


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"executor.kind: Input should be 'local', 'ray'(, 'slurm' or|.*'slurm')"):
        parse_config(cluster_config("/tmp/x", kind="kubernetes"))
