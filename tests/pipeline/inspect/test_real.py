"""`curate diff` and `curate report` on the real pipeline's output (prox_refine, boilerplate backend),
rendered in headless Chromium: DOM checked for documents and counts, screenshots checked not blank."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from curate_testing import REPO
from curate_testing.inspect_data import apply_ops, program_strategies
from hypothesis import given, settings

from curate.pipeline import load_config, run_config
from curate.pipeline.inspect.hunks import doc_diff
from curate.pipeline.inspect.select import Selection, select, status_counts

PROGRAMS = program_strategies()

CURATE = [sys.executable, "-m", "curate.pipeline.cli"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install chromium; scripts/install.sh test does it as root)",
)
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--virtual-time-budget=5000",
]


def stage_names() -> set[str]:
    from curate.core.stage_api import stage_names as names

    return set(names())


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("prox_refine" not in stage_names(), reason="the prox_refine stage is not registered"),
]


@pytest.fixture(scope="module")
def real_output(tmp_path_factory) -> Path:
    """The bundled sample through length filter, readability, a rule and the ProX refiner (boilerplate backend)."""
    tmp = tmp_path_factory.mktemp("inspect-real")
    cfg = {
        "name": "inspect-real",
        "input": {"format": "jsonl", "path": str(REPO / "data" / "sample"), "glob": "*.jsonl.gz", "id_key": "id"},
        "output": {"path": str(tmp / "out"), "metadata_columns": ["url"], "keep_rejected": True, "rows_per_group": 100},
        "executor": {"kind": "local", "tasks": 2, "workers": 2},
        "stages": [
            {"stage": "length_filter", "min_words": 5},
            {"stage": "readability"},
            {"stage": "quality_rule", "keep": "eflaw < 80"},
            {"stage": "prox_refine", "backend": "boilerplate"},
        ],
    }
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    stats = run_config(load_config(tmp / "cfg.yaml"), progress=False)
    assert stats["complete"] and stats["conserved"]
    return tmp / "out"


def test_every_real_refinement_replays_and_is_labelled(real_output):
    edited = list(select(str(real_output), Selection.build(status="edited")))
    assert len(edited) >= 20
    n_norm = 0
    for r in edited:
        d = doc_diff(r.text, r.original_text, r.edits)
        assert d.consistent, (r.id, d.note)
        calls = {e["call"] for e in d.edits}
        for row in d.rows:
            assert set(row.removed_by) <= calls and set(row.normalized_by) <= calls
        removed = {ln for e in d.edits if e["op"] == "remove_lines" for ln in range(e["line_start"], e["line_end"] + 1)}
        assert removed == {ln for row in d.rows if row.removed for ln in range(row.line_start, row.line_end + 1)}
        n_norm += d.rows_normalized
    assert n_norm >= 1  # the boilerplate backend normalizes some entities on the sample


@settings(max_examples=150, deadline=None)
@given(*PROGRAMS)
def test_the_real_executor_output_always_replays(lines, ops):
    text, out = apply_ops(lines, ops)
    if out.status == "edited":
        d = doc_diff(out.text, text, out.edits_json())
        assert d.consistent, d.note


def test_cli_diff_on_real_output(real_output):
    r = subprocess.run(
        CURATE + ["diff", str(real_output), "--status", "edited", "--limit", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("━━ ") == 3 and "removed by prox_refine: remove_lines(" in r.stdout
    assert "source " + str(REPO / "data" / "sample") in r.stdout
    r = subprocess.run(
        CURATE + ["diff", str(real_output), "--status", "dropped:quality_rule", "--limit", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "dropped by quality_rule: eflaw < 80" in r.stdout


def chromium(tmp: Path, page: Path, shot: Path | None = None, size: str = "1400,1000", hash_: str = "") -> str:
    """The DOM after the page's scripts ran (and a screenshot when `shot` is given)."""
    url = page.resolve().as_uri() + hash_
    args = [CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={tmp / 'chrome-profile'}"]
    dom = subprocess.run(args + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    if shot is not None:
        s = subprocess.run(
            args + [f"--screenshot={shot}", f"--window-size={size}", url], capture_output=True, text=True, timeout=120
        )
        assert s.returncode == 0 and shot.is_file(), s.stderr[-2000:]
        _assert_not_blank(shot)
    return dom.stdout


def _assert_not_blank(png: Path) -> None:
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[0] > 500 and img.shape[1] > 1000
    assert img[..., :3].std() > 0.05  # a real page, not a white or error screen


def _self_contained(html: str) -> None:
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=[\"']?(https?:)?//", html, re.I)
    assert "<link" not in html and "@import" not in html


@pytest.mark.browser
@needs_browser
def test_diff_page_in_chromium(real_output, tmp_path):
    page = tmp_path / "diff.html"
    r = subprocess.run(
        CURATE + ["diff", str(real_output), "--html", str(page)], capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    _self_contained(html)
    totals = status_counts(str(real_output))
    edited = [d.id for d in select(str(real_output), Selection.build(status="edited", limit=1))][0]
    dom = chromium(tmp_path, page, tmp_path / "diff.png", hash_="#" + edited)
    items = re.findall(r'<li class="[^"]*" data-id="([^"]+)" data-status="([a-z_]+)"', dom)
    per: dict[str, int] = {}
    for _, s in items:
        per[s] = per.get(s, 0) + 1
    assert per == {k: min(200, v) for k, v in totals.items()}  # default: up to 200 per status
    for k, n in per.items():
        assert f'id="count-{k}">{n}<' in dom
    assert f'id="count-all">{len(items)}<' in dom
    assert json.loads(re.search(r"data-totals=\"([^\"]+)\"", dom).group(1).replace("&quot;", '"')) == totals
    # the selected (edited) document is shown with its labelled change and its programs
    assert f'<h2 id="doc-id">{edited}</h2>' in dom
    assert re.search(
        r'<tr class="label"><td colspan="4"><span class="what">lines? [\d–]+ removed by</span>prox_refine: remove_lines\(',
        dom,
    )
    assert "chunk programs (" in dom and "keep_doc()" in dom
    # the stages that edited it, from the edits column
    assert re.search(r'id="doc-stages">edited by <b class="stage">prox_refine</b> \(\d+ spans?\)', dom)


@pytest.mark.browser
@needs_browser
def test_report_in_chromium(real_output, tmp_path):
    r = subprocess.run(CURATE + ["report", str(real_output)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    page = real_output / "report.html"
    html = page.read_text()
    _self_contained(html)
    dom = chromium(tmp_path, page, tmp_path / "report.png", size="1400,2600")
    for section in ("summary", "funnel", "drops", "refinement", "annotations"):
        assert f'id="{section}"' in dom
    stats = json.loads((real_output / "stats.json").read_text())
    assert f"<b>{stats['input_records']:,}</b>" in dom and f"<b>{stats['output_docs']:,}</b>" in dom
    for k, n in status_counts(str(real_output)).items():
        assert f'id="status-{k}">{n:,}<' in dom
    # a histogram per float column, with the rule's threshold named under it
    fig = re.search(
        r'<figure data-column="eflaw" data-layout="[^"]*"><img alt="eflaw" src="data:image/png;base64,'
        r'[A-Za-z0-9+/=]{2000,}"><figcaption title="[^"]*">([^<]*)<',
        dom,
    )
    assert fig and "quality_rule: eflaw &lt; 80" in fig.group(1)
    assert dom.count("data:image/png;base64,") >= 4  # funnel, drops, statuses, eflaw


def test_a_run_that_drops_everything(tmp_path):
    """A real run whose length filter drops every document: `curate diff` and `curate report` say there
    is nothing, name the reason, and exit 0 (whether the writer left a zero-row file or none)."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "docs.jsonl").write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"a short document number {i}"}) + "\n" for i in range(6))
    )
    out = tmp_path / "out"
    cfg = {
        "name": "all-dropped",
        "input": {"format": "jsonl", "path": str(src), "glob": "*.jsonl"},
        "output": {"path": str(out), "keep_rejected": False},
        "executor": {"kind": "local", "tasks": 1},
        "stages": [{"stage": "length_filter", "min_words": 1_000_000}],
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    stats = run_config(load_config(tmp_path / "cfg.yaml"), progress=False)
    assert stats["complete"] and stats["output_docs"] == 0
    data = sorted((out / "data").glob("*.parquet")) if (out / "data").is_dir() else []
    for f in data:  # the writer's side: the full schema, no rows
        import pyarrow.parquet as pq

        assert pq.ParquetFile(f).metadata.num_rows == 0 and "text" in pq.ParquetFile(f).schema_arrow.names
    why = "every one of the 6 input document(s) was dropped (length_filter: too_few_words 6)"
    r = subprocess.run(CURATE + ["diff", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and why in r.stdout, r.stdout + r.stderr
    r = subprocess.run(
        CURATE + ["diff", str(out), "--html", str(tmp_path / "d.html")], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and why in (tmp_path / "d.html").read_text(), r.stderr
    r = subprocess.run(CURATE + ["report", str(out)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    page = (out / "report.html").read_text()
    assert "<section id=no-documents>" in page and why in page
