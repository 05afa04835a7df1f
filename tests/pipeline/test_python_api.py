"""The Python API never hangs and importing curate changes nothing global.

- A plain script that calls run_config() without an `if __name__ == "__main__":` guard works (workers
  never re-import it); a worker that dies fails the run with its error, never an endless respawn.
- Every ```python block of the Python API page (docs/python-api.md) runs verbatim.
- Importing curate leaves datatrove's logging as it was; curate's console handling applies inside its
  own runs, run_stages included.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from curate_testing import REPO


def _python(
    code: str, tmp_path: Path, timeout: float = 300, cwd: Path = REPO, **env: str
) -> subprocess.CompletedProcess:
    script = tmp_path / f"script_{abs(hash(code))}.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def docs_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "docs" / "python-api.md").read_text(), flags=re.S)


def test_the_python_api_page_has_python_blocks() -> None:
    assert len(docs_python_blocks()) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(docs_python_blocks())))
def test_every_python_api_block_runs_verbatim(index: int, tmp_path: Path) -> None:
    block = docs_python_blocks()[index]
    r = _python(block, tmp_path, timeout=600, CURATE_OUTPUT=str(tmp_path / "out"))
    assert r.returncode == 0, f"docs/python-api.md python block {index} failed:\n{block}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_run_config_in_a_script_without_main_guard_works(tmp_path: Path, sample_dir: Path) -> None:
    code = textwrap.dedent(f"""
        from curate.pipeline import parse_config, run_config
        cfg = parse_config({{"input": {{"format": "jsonl", "path": "{sample_dir}", "glob": "c4-*.jsonl.gz"}},
                             "output": {{"path": "{tmp_path / "o"}"}},
                             "executor": {{"kind": "local", "tasks": 2, "workers": 2}},
                             "stages": [{{"stage": "length_filter", "min_words": 30}}]}})
        stats = run_config(cfg, progress=False)
        print("OUTPUT", stats["output_docs"])
    """)
    t = time.time()
    r = _python(code, tmp_path, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"OUTPUT \d+", r.stdout) and r.stdout.count("OUTPUT") == 1  # the script ran once
    assert time.time() - t < 150


@pytest.mark.slow
def test_a_worker_that_dies_fails_the_run_in_seconds(tmp_path: Path, sample_dir: Path) -> None:
    """A step that kills its worker process (as the OOM killer would): the run ends with one clear error."""
    code = textwrap.dedent(f"""
        import os
        from curate.pipeline import CurateStep, parse_config, run_config
        from curate.pipeline.executors import build_executors
        from curate.pipeline.plan import build_plan

        class Dies(CurateStep):
            name = "dies"
            def run(self, data, rank=0, world_size=1):
                for doc in data:
                    os._exit(9)
                    yield doc

        cfg = parse_config({{"input": {{"format": "jsonl", "path": "{sample_dir}", "glob": "c4-*.jsonl.gz"}},
                             "output": {{"path": "{tmp_path / "o"}"}},
                             "executor": {{"kind": "local", "tasks": 2, "workers": 2}}, "stages": []}})
        plan = build_plan(cfg)
        plan.jobs[0].steps.insert(1, Dies())
        from curate.pipeline import CurateError
        try:
            for e in build_executors(plan):
                e.run()
        except CurateError as e:
            print("FAILED:", e)
    """)
    t = time.time()
    r = _python(code, tmp_path, timeout=120)
    assert "FAILED: a worker process died before finishing its task" in r.stdout, r.stderr[-3000:]
    assert time.time() - t < 60


def test_worker_bootstrap_guard_says_what_to_add() -> None:
    """Should a worker still import the script (another start method), run_config stops it in one line."""
    code = textwrap.dedent("""
        import multiprocessing
        multiprocessing.current_process()._inheriting = True
        from curate.pipeline.run import _refuse_in_worker_bootstrap
        _refuse_in_worker_bootstrap()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and 'if __name__ == "__main__":' in r.stderr and len(r.stderr.splitlines()) == 1


DATATROVE_PIPELINE = """
import sys
{imports}
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.filters import LambdaFilter
from datatrove.pipeline.writers import JsonlWriter

if __name__ == "__main__":
    LocalPipelineExecutor(pipeline=[JsonlReader("{data}", glob_pattern="c4-*.jsonl.gz"),
                                    LambdaFilter(lambda d: len(d.text) > 500), JsonlWriter("{out}")],
                          tasks=1, logging_dir="{logs}").run()
"""


def test_importing_curate_leaves_datatrove_logging_alone(tmp_path: Path, sample_dir: Path) -> None:
    lines = {}
    for name, imports in (
        ("plain", ""),
        (
            "curate",
            "import curate.pipeline, curate.pipeline.cli, curate.pipeline.run, "
            "curate.core.stage_api as r; r.load_builtin_stages()",
        ),
    ):
        code = DATATROVE_PIPELINE.format(
            imports=imports, data=sample_dir, out=tmp_path / name / "out", logs=tmp_path / name / "logs"
        )
        r = _python(code, tmp_path, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        lines[name] = len(r.stderr.splitlines())
    assert lines["plain"] > 10 and lines["curate"] == lines["plain"]


def test_run_stages_keeps_datatrove_info_lines_off_the_console(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        from curate.pipeline import run_stages
        texts = [f"document number {i} " + "shared words of a near duplicate text " * 20 for i in range(30)]
        res = run_stages(texts, [{"stage": "minhash_dedup"}])
        print("KEPT", len(res.docs))
        from loguru import logger
        logger.info("the user's own INFO line after the run")
    """)
    r = _python(code, tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "KEPT" in r.stdout
    assert "datatrove" not in r.stderr  # no bucket / sorting / reading lines
    assert "the user's own INFO line after the run" in r.stderr  # the default handler is given back
