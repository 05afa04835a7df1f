"""User stages as plugins: a single .py file named in a config's `plugins:` and an installed package found
through the `curate.stages` entry points, each in a real run (local workers, Ray, the Slurm cluster);
the blocks of docs/extending/stage.md ("Write your own stage") are run exactly as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from curate_testing import REPO

from curate.pipeline import ConfigError, load_config, parse_config, run_config


def _section_blocks(lang: str) -> list[str]:
    text = (REPO / "docs" / "extending" / "stage.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.fixture
def docs_plugin(tmp_path: Path) -> Path:
    """punctuation.py and my_run.yaml from docs/extending/stage.md, side by side, with the sample data where the YAML says."""
    (python,) = _section_blocks("python")
    run_yaml = _section_blocks("yaml")[0]
    (tmp_path / "punctuation.py").write_text(python)
    (tmp_path / "my_run.yaml").write_text(run_yaml)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sample").symlink_to(REPO / "data" / "sample")
    return tmp_path


def curate(
    args: list[str], cwd: Path | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "curate.pipeline.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_readme_plugin_runs_on_local_workers(docs_plugin: Path) -> None:
    r = curate(["run", "my_run.yaml", "--tasks", "2", "--workers", "2", "--no-progress"], cwd=docs_plugin)
    assert r.returncode == 0, r.stderr[-3000:]
    out = docs_plugin / "out" / "punctuation"
    stats = json.loads((out / "stats.json").read_text())
    stage = next(s for s in stats["stages"] if s["label"] == "punctuation_filter")
    assert stage["conserved"] and stage["dropped"].get("too_little_punctuation", 0) > 0
    ratios = [
        r
        for f in (out / "data").glob("*.parquet")
        for r in pq.read_table(f, columns=["punct_ratio"]).column(0).to_pylist()
    ]
    assert len(ratios) == stats["output_docs"] and min(ratios) >= 0.02 - 1e-6  # float32 column


def test_curate_stages_lists_a_file_plugin(docs_plugin: Path) -> None:
    r = curate(["stages", "punctuation_filter", "--plugin", str(docs_plugin / "punctuation.py")])
    assert r.returncode == 0, r.stderr
    assert "min_ratio" in r.stdout and "→ punct_ratio" in r.stdout


def test_installed_plugin_package_is_listed_and_validated(tmp_path: Path, sample_dir: Path) -> None:
    r = curate(["stages", "digit_ratio_filter"])
    assert r.returncode == 0 and "max_ratio" in r.stdout and "→ digit_ratio" in r.stdout
    with pytest.raises(ConfigError, match=r"stages\[0\].max_ratio: Input should be less than or equal to 1"):
        parse_config(
            {
                "input": {"format": "jsonl", "path": str(sample_dir)},
                "output": {"path": str(tmp_path)},
                "stages": [{"stage": "digit_ratio_filter", "max_ratio": 3}],
            }
        )


def test_a_broken_plugin_is_one_config_error(tmp_path: Path, sample_dir: Path) -> None:
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    base = {"input": {"format": "jsonl", "path": str(sample_dir)}, "output": {"path": str(tmp_path / "o")}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**base, "plugins": ["broken.py"]}))
    with pytest.raises(ConfigError, match=r"plugins\[0\]: cannot import plugin '.*broken.py': ModuleNotFoundError"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({**base, "plugins": ["missing.py"]}))
    with pytest.raises(ConfigError, match=r"plugins\[0\]: plugin file '.*missing.py' not found"):
        load_config(tmp_path / "d.yaml")


@pytest.mark.slow
def test_file_plugin_on_ray(ray_local, docs_plugin: Path) -> None:
    cfg = load_config(
        docs_plugin / "my_run.yaml",
        {"executor.kind": "ray", "executor.tasks": 2, "output.path": str(docs_plugin / "ray-out")},
    )
    stats = run_config(cfg, progress=False)
    assert stats["complete"] and stats["conserved"]
    stage = next(s for s in stats["stages"] if s["label"] == "punctuation_filter")
    assert stage["dropped"].get("too_little_punctuation", 0) > 0


@pytest.mark.slow
def test_installed_plugin_on_slurm(slurm_cluster, tmp_path: Path, sample_dir: Path) -> None:
    out = tmp_path / "o"
    c = {
        "name": "plug",
        "input": {"format": "jsonl", "path": str(sample_dir), "glob": "c4-*.jsonl.gz"},
        "output": {"path": str(out)},
        "executor": {
            "kind": "slurm",
            "tasks": 2,
            "workers": 2,
            "slurm": {
                "partition": "debug",
                "time": "0:20:00",
                "mem_per_cpu_gb": 1,
                "venv_path": sys.prefix,
                "job_name": "plug",
            },
        },
        "stages": [{"stage": "digit_ratio_filter", "max_ratio": 0.02}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(c))
    r = curate(["run", str(tmp_path / "c.yaml"), "--wait", "--no-progress"], env=slurm_cluster, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    stage = next(s for s in stats["stages"] if s["label"] == "digit_ratio_filter")
    assert stats["complete"] and stage["conserved"] and stage["dropped"].get("too_many_digits", 0) > 0
    assert stats["output_docs"] == sum(pq.read_metadata(f).num_rows for f in (out / "data").glob("*.parquet"))
