"""A built wheel, installed into a fresh virtualenv outside the checkout, runs `curate run` on the bundled
sample with the models and tokenizer it ships (so the asset folders are in the wheel), and building it
prints no warning from the project's own packaging."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from curate_testing import REPO

# what setuptools says when pyproject.toml is off (a licence table, an asset folder missing from packages)
PACKAGING_WARNINGS = re.compile(
    r"SetuptoolsDeprecationWarning|absent from the `packages`|License classifiers|_DeprecatedConfig"
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


@pytest.mark.slow
def test_wheel_installs_outside_the_checkout_and_runs_the_sample(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    # from a copy of the sources: pip builds in the tree, and setuptools' build/lib keeps modules a checkout
    # has since deleted or moved (they would reach the wheel and hide a package missing from pyproject)
    import shutil

    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "tests", "out", "*.egg-info", "__pycache__", ".hypothesis")
    shutil.copytree(REPO, src, ignore=skip)
    # no build isolation: the virtualenv's setuptools (>= 77, as pyproject says) builds it, nothing is fetched
    log = _run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        cwd=tmp_path,
    )
    assert not PACKAGING_WARNINGS.findall(log), [ln for ln in log.splitlines() if PACKAGING_WARNINGS.search(ln)]
    (wheel,) = wheels.glob("curate-*.whl")

    # a fresh virtualenv; the dependencies come from this one through a path entry (not a site dir, so this
    # environment's editable curate is not loaded there), curate itself only from the wheel
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    vpy = venv / "bin" / "python"
    purelib = _run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).strip()
    (Path(purelib) / "_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(vpy), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=tmp_path,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = _run([str(vpy), "-c", "import curate.pipeline; print(curate.pipeline.__file__)"], cwd=tmp_path, env=env)
    installed = Path(where.strip()).parents[1]  # .../site-packages/curate
    assert installed.is_relative_to(venv), where

    # configs/sample.yaml with the sample data where it lies and the models and tokenizer the wheel installed
    text = (REPO / "configs" / "sample.yaml").read_text()
    text = text.replace("../data/sample", str(REPO / "data" / "sample"))
    text = text.replace("../filters/assets/", f"{installed}/filters/assets/")
    text = text.replace("../dedup/assets/", f"{installed}/dedup/assets/")
    text = text.replace("${CURATE_OUTPUT:-../out/sample}", str(tmp_path / "out"))
    assert "../" not in text.split("stages:")[1].replace("# ", "")
    (tmp_path / "sample.yaml").write_text(text)
    out = _run(
        [str(venv / "bin" / "curate"), "run", "sample.yaml", "--limit", "30", "--no-progress"], cwd=tmp_path, env=env
    )
    assert "prox_refine" in out
    rows = sum(pq.read_metadata(f).num_rows for f in (tmp_path / "out" / "data").glob("*.parquet"))
    assert rows > 0
