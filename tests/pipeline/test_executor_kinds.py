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


def test_the_docs_executor_kind_runs_as_written(tmp_path: Path):
    import re
    import sys
    import types

    from curate_testing import REPO

    page = (REPO / "docs" / "extending" / "executor.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    module = types.ModuleType("docs_executor_kind")
    sys.modules[module.__name__] = module
    if "one_at_a_time" not in KINDS:
        exec(compile(block, "docs/extending/executor.md", "exec"), module.__dict__)
    kind = KINDS.get("one_at_a_time")
    stats = run_config(parse_config(cluster_config(tmp_path / "out", kind="one_at_a_time")), progress=False)
    assert stats["complete"] and kind.launched == ["main", "refine"]
