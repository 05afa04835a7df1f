"""The configuration reference (docs/reference/) is generated from the options models: a model that gains,
loses or changes an option fails here until `python scripts/gen_config_reference.py` is rerun."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest
from curate_testing import REPO


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_reference", REPO / "scripts" / "gen_config_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(gen: ModuleType) -> dict[str, str]:
    return gen.render()


def test_committed_pages_are_current(gen: ModuleType, pages: dict[str, str]) -> None:
    stale = [name for name, text in pages.items() if (gen.OUT / name).read_text() != text]
    assert stale == [], f"docs/reference/{stale} out of date: run python scripts/gen_config_reference.py"


def _section(page: str, heading: str) -> str:
    start = page.index(heading)
    nxt = page.find("\n## ", start + len(heading))
    return page[start : nxt if nxt != -1 else len(page)]


def _keys(text: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))


def test_every_stage_option_and_column_is_on_the_stages_page(pages: dict[str, str]) -> None:
    from curate.core.stage_api import all_stages

    page = pages["stages.md"]
    for spec in all_stages():
        if not spec.options.__module__.startswith("curate."):
            continue  # an installed plugin package's stage is not part of curate's reference
        section = _section(page, f"## `{spec.name}`")
        keys = {k.rpartition(".")[2] for k in _keys(section)}
        assert set(spec.options.model_fields) <= keys, spec.name
        for col in spec.static_columns:
            assert f"| `{col.name}` |" in section, (spec.name, col.name)


def test_every_input_output_executor_and_backend_option_is_shown(pages: dict[str, str]) -> None:
    from curate.pipeline.config import CurateConfig, ExecutorConfig, OutputConfig, RayConfig, SlurmConfig
    from curate.pipeline.readers import reader_class, reader_formats
    from curate.refiners.backends.base import all_backends

    for fmt in reader_formats():
        shown = _keys(_section(pages["input.md"], "## Every format")) | _keys(
            _section(pages["input.md"], f"## `format: {fmt}`")
        )
        assert {f"input.{k}" for k in reader_class(fmt).options_model.model_fields} <= shown, fmt
    assert {f"output.{k}" for k in OutputConfig.model_fields} <= _keys(pages["output.md"])
    executor = _keys(pages["executor.md"])
    assert {f"executor.{k}" for k in ExecutorConfig.model_fields} <= executor
    assert {f"executor.slurm.{k}" for k in SlurmConfig.model_fields} <= executor
    assert {f"executor.ray.{k}" for k in RayConfig.model_fields} <= executor
    assert set(CurateConfig.model_fields) - {"input", "output", "executor", "stages"} <= _keys(pages["index.md"])
    for spec in all_backends():
        assert set(spec.options.model_fields) <= _keys(_section(pages["backends.md"], f"## `{spec.name}`")), spec.name


def test_every_option_has_a_description(pages: dict[str, str]) -> None:
    """A row with an empty description column is an option nobody explained."""
    empty = [
        line
        for text in pages.values()
        for line in text.splitlines()
        if line.startswith("| `") and line.endswith("|  |")
    ]
    assert empty == []
