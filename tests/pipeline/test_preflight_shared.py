"""One preflight: `validate`, `plan` and the start of `run` refuse the same configs, every problem at once,
one line each naming the key and the fix; `plan` takes every flag `run` takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curate.pipeline.cli import main

COMMANDS = ("validate", "plan", "run")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An input folder of real JSON Lines and a config beside it."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jsonl").write_text(
        "".join(json.dumps({"id": f"a{i}", "text": f"document {i} has a few words"}) + "\n" for i in range(6))
    )
    c = {
        "input": {"format": "jsonl", "path": str(src)},
        "output": {"path": str(tmp_path / "out")},
        "stages": [{"stage": "length_filter", "min_words": 2}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(c))
    return tmp_path


def config(project: Path, **changes: dict) -> str:
    c = yaml.safe_load((project / "c.yaml").read_text())
    for section, values in changes.items():
        c[section] = values if section == "stages" else {**c.get(section, {}), **values}
    path = project / "changed.yaml"
    path.write_text(yaml.safe_dump(c))
    return str(path)


def refused(argv: list[str], capsys: pytest.CaptureFixture) -> list[str]:
    """The problem lines of a command that must exit 2 (no traceback, nothing else)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line.strip()[2:] for line in err.splitlines() if line.strip().startswith("- ")] or [err.strip()]


def test_a_top_level_error_does_not_hide_the_stage_errors(project: Path, capsys) -> None:
    path = config(project, executor={"tasks": "x"}, stages=[{"stage": "length_filter", "min_wrds": 3}])
    for cmd in COMMANDS:
        lines = refused([cmd, path], capsys)
        assert any(p.startswith("executor.tasks:") for p in lines), lines
        assert any(p.startswith("stages[0].min_wrds: unknown key (did you mean 'min_words'?)") for p in lines)


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        (["--tasks", "0"], "executor.tasks"),
        (["--workers", "0"], "executor.workers"),
        (["--limit", "-5"], "input.limit"),
    ],
)
def test_cli_counts_out_of_range_are_refused_by_every_command(project: Path, capsys, flags, key) -> None:
    for cmd in COMMANDS:
        lines = refused([cmd, str(project / "c.yaml"), *flags], capsys)
        assert len(lines) == 1 and lines[0].startswith(f"{key}: ") and flags[0] in lines[0], lines
    assert not (project / "out").exists() and not (project / "out.work").exists()


def test_a_negative_limit_in_the_config_is_refused(project: Path, capsys) -> None:
    path = config(project, input={"limit": -5})
    lines = refused(["validate", path], capsys)
    assert lines == [
        "input.limit: not a record count; give -1 (read everything) or N >= 0 records per task (--limit N) (got -5)"
    ]


@pytest.mark.parametrize(
    ("output", "work", "key", "says"),
    [
        ("in", None, "output.path", "is the input folder"),
        ("in/out", None, "output.path", "is inside input.path"),
        (".", None, "output.path", "holds input.path"),
        ("out", "in/scratch", "output.work_dir", "is inside input.path"),
    ],
)
def test_output_and_work_folder_must_lie_apart_from_the_input(
    project: Path, capsys, output: str, work: str | None, key: str, says: str
) -> None:
    before = sorted(p.name for p in (project / "in").iterdir())
    out = {"path": str(project / output)} | ({"work_dir": str(project / work)} if work else {})
    path = config(project, output=out)
    for cmd in COMMANDS:
        lines = refused([cmd, path], capsys)
        assert any(p.startswith(f"{key}: ") and says in p and "outside the input" in p for p in lines), lines
    # nothing was written into the source data
    assert sorted(p.name for p in (project / "in").iterdir()) == before
    # the command line's --output is checked the same way
    lines = refused(["plan", str(project / "c.yaml"), "--output", str(project / "in" / "sub")], capsys)
    assert any(p.startswith("output.path: ") and "is inside input.path" in p for p in lines)


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write: a read-only one, or (root writes anywhere) one under /sys."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "out"
    return Path("/sys/curate-test-out")


def test_an_unwritable_output_is_refused_by_every_command_and_nothing_is_left_behind(project: Path, capsys) -> None:
    bad = _unwritable(project)
    path = config(project, output={"path": str(bad)})
    for cmd in COMMANDS:
        lines = refused([cmd, path], capsys)
        assert any(p.startswith("output.path: cannot create") and "choose a writable folder" in p for p in lines)
    # the probe of a writable output leaves no file and no folder
    listing = sorted(os.listdir(project))
    assert main(["validate", str(project / "c.yaml")]) == 0 and main(["plan", str(project / "c.yaml")]) == 0
    assert sorted(os.listdir(project)) == listing and not (project / "out").exists()


_BLOCKED = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # what an environment without the package gives: ModuleNotFoundError
from curate.pipeline.cli import main
for cmd in ("validate", "plan", "run"):
    print("rc", cmd, main([cmd, *sys.argv[2:]]), file=sys.stderr, flush=True)
"""


def _without(packages: str, *argv: str) -> str:
    r = subprocess.run([sys.executable, "-c", _BLOCKED, packages, *argv], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr


@pytest.mark.slow  # two CLI processes, each running validate, plan and run (~6 s)
def test_a_missing_optional_package_names_its_pip_extra(project: Path) -> None:
    """Without Ray and without spaCy (imports blocked in a real CLI process): validate, plan and run each
    refuse with both problems at once, naming the extra to install; no ModuleNotFoundError traceback."""
    path = config(project, executor={"kind": "ray"}, stages=[{"stage": "gopher_quality"}])
    err = _without("ray,spacy", path)
    for cmd in COMMANDS:
        assert f"rc {cmd} 2" in err
    assert (
        err.count("executor.kind: ray needs the 'ray' package, which is not installed: pip install 'curate[ray]'") == 3
    )
    assert err.count("stages[0]: datatrove's English word tokenizer needs spaCy") == 3
    assert err.count("pip install 'curate[heuristics]'") == 3
    assert not (project / "out").exists()
    path = config(project, stages=[{"stage": "gopher_quality"}, {"stage": "length_filter", "min_wrds": 1}])
    err = _without("ray,spacy", path, "--executor", "ray")
    assert err.count("min_wrds") == 3  # a schema error does not hide the others (and vice versa)


def test_plan_takes_the_flags_of_run(project: Path, capsys) -> None:
    out = project / "elsewhere"
    argv = ["--executor", "local", "--tasks", "3", "--workers", "2", "--limit", "4", "--output", str(out)]
    argv += ["--set", "stages.0.min_words=3"]
    assert main(["plan", str(project / "c.yaml"), "--json", *argv]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["output"] == str(out) and d["work_dir"] == str(out) + ".work"
    assert [(j["tasks"], j["workers"]) for j in d["jobs"]] == [(3, 2)]
    assert main(["validate", str(project / "c.yaml"), *argv]) == 0


def test_stats_of_an_output_folder_that_holds_no_run(project: Path, capsys) -> None:
    lines = refused(["stats", str(project / "out" / "nope")], capsys)
    assert "no such folder or file" in lines[0] and "config file" not in lines[0]
    (project / "empty").mkdir()
    lines = refused(["stats", str(project / "empty")], capsys)
    assert "no stats.json here" in lines[0]


@pytest.mark.slow  # one CLI process running validate, plan and run (~4 s)
def test_a_refiner_backend_without_its_packages_names_the_extra(project: Path) -> None:
    stage = {
        "stage": "prox_refine",
        "backend": "transformers",
        "doc_model": str(project / "m"),
        "chunk_model": str(project / "m"),
    }
    err = _without("torch,transformers", config(project, stages=[stage]))
    for cmd in COMMANDS:
        assert f"rc {cmd} 2" in err
    line = "stages[0].backend: backend transformers needs the 'torch' package, which is not installed: pip install 'curate[hf]'"
    assert err.count(line) == 3 and err.count("needs the 'transformers' package") == 3
