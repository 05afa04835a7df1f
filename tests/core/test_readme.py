"""The README stays a front door that tells the truth: short, its stage table equal to the registry, its
extras table equal to pyproject's extras, its links pointing at files that exist."""

from __future__ import annotations

import re

from curate_testing import REPO

README = (REPO / "README.md").read_text()


def _table_after(heading: str) -> list[str]:
    section = README.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)


def test_readme_fits_a_front_door() -> None:
    assert len(README.splitlines()) <= 250


def test_stage_table_lists_every_registered_stage() -> None:
    from curate.core.stage_api import all_stages

    builtin = {s.name for s in all_stages() if s.options.__module__.startswith("curate.")}
    assert set(_table_after("## Stages")) == builtin


def test_extras_table_names_every_extra() -> None:
    # pyproject's [project.optional-dependencies] table (no tomllib: it is Python 3.11+, curate supports 3.10)
    table = (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    extras = re.findall(r"^([\w-]+) = \[", table, flags=re.M)
    assert "test" in extras
    assert set(_table_after("## Extras")) == set(extras)


def test_links_point_at_files_that_exist() -> None:
    targets = [t for t in re.findall(r"\]\(([^)]+)\)", README) if "://" not in t]
    assert targets
    missing = [t for t in targets if not (REPO / t.split("#", 1)[0]).exists()]
    assert missing == []


def test_setup_commands_are_the_scripts_that_exist() -> None:
    for script in re.findall(r"^bash (scripts/\S+\.sh)", README, flags=re.M):
        assert (REPO / script).is_file(), script
