"""`curate --help` starts in well under a second: the package exports and the sub-commands load the engine
(datatrove, pyarrow, pydantic models) only when a command runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import curate.pipeline

HEAVY = ("datatrove", "pyarrow", "numpy", "pydantic", "torch", "fasttext")


def test_help_starts_in_under_a_second() -> None:
    best = float("inf")
    for _ in range(2):  # the first start may pay for a cold disk cache
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "curate.pipeline.cli", "--help"], capture_output=True, text=True, check=True
        )
        best = min(best, time.perf_counter() - start)
    assert "usage: curate" in done.stdout
    assert best < 1.0, f"curate --help took {best:.2f} s"


def test_building_the_parser_loads_no_engine_module() -> None:
    code = (
        "import json, sys; import curate.pipeline.cli as c; c.build_parser(); "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_every_lazy_export_resolves() -> None:
    for name in curate.pipeline.__all__:
        assert getattr(curate.pipeline, name) is not None, name
    assert sorted(curate.pipeline.__all__) == sorted(curate.pipeline._EXPORTS)
