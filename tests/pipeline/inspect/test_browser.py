"""The `curate diff` page and the report laid out by a real headless Chromium at 800, 1024 and 1400 px.

Chromium runs the page's own script, then a small measuring script the test appends (not shipped)
writes the boxes of the page's parts, as the browser computed them, into the DOM; `--dump-dom`
brings them back. One Chromium start per width, about a second each.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from curate_testing.inspect_data import write_empty_output, write_output, write_run_files

from curate.pipeline.inspect.select import Selection, select

CURATE = [sys.executable, "-m", "curate.pipeline.cli"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium not installed (apt-get install chromium; scripts/install.sh test does it as root)",
    ),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=3000",
]

# the boxes of the page's parts, and for every long diff cell how many characters a rendered line holds
MEASURE = """
(() => {
  const box = e => { if (!e) return null; const b = e.getBoundingClientRect();
                     return {l: b.left, r: b.right, t: b.top, b: b.bottom, w: b.width, h: b.height}; };
  const q = s => box(document.querySelector(s));
  const perLine = [];
  for (const td of document.querySelectorAll("table.diff td.txt")) {
    const n = td.textContent.length;
    if (n < 60) continue;
    const rg = document.createRange(); rg.selectNodeContents(td);
    perLine.push(n / Math.max(1, new Set([...rg.getClientRects()].map(r => Math.round(r.top))).size));
  }
  const overflow = [];  // anything reaching past the window's right edge (the list scrolls on its own)
  for (const e of document.querySelectorAll("body *")) {
    const b = e.getBoundingClientRect();
    if (b.width && b.right > document.documentElement.clientWidth + 0.5) overflow.push(e.tagName + "." + e.className + "#" + e.id);
  }
  const facts = {vw: document.documentElement.clientWidth, scroll_w: document.documentElement.scrollWidth,
    header: q("header"), aside: q("aside"), main: q("main"), diff: q(".diffbox"), programs: q(".side-panel"),
    kv: q(".dochead .kv"), annotations: q("#doc-annotations"), buttons: [...document.querySelectorAll(".toolbar button")].map(box),
    annotations_text: (document.querySelector("#doc-annotations") || {}).textContent || "",
    images: [...document.querySelectorAll("img")].map(box), chars_per_line: perLine, overflow: overflow.slice(0, 10)};
  const pre = document.createElement("pre"); pre.id = "layout-facts"; pre.textContent = JSON.stringify(facts);
  document.body.append(pre);
})();
"""


def measure(page: Path, width: int, tmp: Path, hash_: str = "") -> dict:
    probe = tmp / f"probe-{page.name}"
    probe.write_text(page.read_text().replace("</body>", f"<script>{MEASURE}</script></body>"))
    r = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            f"--window-size={width},1000",
            "--dump-dom",
            probe.resolve().as_uri() + hash_,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="layout-facts">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stdout[-2000:]
    return json.loads(html.unescape(m.group(1)))


@pytest.fixture(scope="module")
def diff_page(tmp_path_factory) -> tuple[Path, str]:
    """A page from a contract output, opened on an edited document with long lines and a long URL."""
    tmp = tmp_path_factory.mktemp("browser")
    out = tmp / "out"
    write_output(out, 120, seed=3, rows_per_group=50)
    page = tmp / "diff.html"
    r = subprocess.run(CURATE + ["diff", str(out), "--html", str(page)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    edited = [
        d
        for d in select(str(out), Selection.build(status="edited"))
        if max(map(len, d.text.split("\n"))) > 200 and len(d.extra["url"]) > 100
    ]
    assert edited
    return page, "#" + edited[0].id


@pytest.mark.parametrize("width", [800, 1024, 1400])
def test_diff_page_layout(diff_page, tmp_path, width):
    page, hash_ = diff_page
    f = measure(page, width, tmp_path, hash_)
    assert f["vw"] <= width
    # nothing wider than the window, no horizontal scrolling, long URLs and ids wrapped
    assert f["scroll_w"] <= f["vw"] and f["overflow"] == [], f["overflow"]
    assert f["kv"]["r"] <= f["main"]["r"] + 0.5 and f["annotations"]["r"] <= f["main"]["r"] + 0.5
    assert re.fullmatch(r"annotations: ft_dclm \S+ · eflaw \S+ · tokens_per_char \S+", f["annotations_text"]), f[
        "annotations_text"
    ]
    # the text is readable: a rendered line of a long diff cell holds dozens of characters (it held 1 at 800 px)
    assert f["chars_per_line"] and min(f["chars_per_line"]) >= 25, f["chars_per_line"]
    # the header, however many lines it wraps to, is above the list and the document, not over them
    assert f["header"]["b"] <= f["aside"]["t"] + 0.5 and f["header"]["b"] <= f["main"]["t"] + 0.5
    # toolbar buttons stay one line high
    assert all(b["h"] < 30 for b in f["buttons"]), f["buttons"]
    if width == 800:  # narrow: the list above the document, both the window's width
        assert f["aside"]["b"] <= f["main"]["t"] + 0.5
        assert f["aside"]["w"] >= 0.95 * f["vw"] and f["main"]["w"] >= 0.95 * f["vw"]
    else:  # wide: the list left of the document
        assert f["aside"]["r"] <= f["main"]["l"] + 0.5 and f["aside"]["w"] <= 0.3 * f["vw"]
    if width == 1400:  # the programs beside the diff
        assert f["programs"]["l"] >= f["diff"]["r"] and f["programs"]["t"] < f["diff"]["b"]
        assert f["diff"]["w"] >= 600
    else:  # the programs under the diff, which gets the whole width of the document pane
        assert f["programs"]["t"] >= f["diff"]["b"]
        assert f["diff"]["w"] >= 0.9 * f["main"]["w"]


def test_a_document_no_refiner_saw_shows_just_its_text(diff_page, tmp_path):
    """Dropped by the length filter, before the refiner: no view buttons, no empty program panels."""
    page, _ = diff_page
    out = page.parent / "out"
    doc = next(iter(select(str(out), Selection.build(status="dropped:length_filter", limit=1))))
    f = measure(page, 1024, tmp_path, "#" + doc.id)
    assert f["programs"] is None and f["buttons"] == []
    assert f["diff"]["w"] >= 0.9 * f["main"]["w"]  # the text takes the pane


def test_diff_page_of_an_output_with_no_documents(tmp_path):
    out = tmp_path / "out"
    write_empty_output(out, 4)
    page = tmp_path / "diff.html"
    r = subprocess.run(CURATE + ["diff", str(out), "--html", str(page)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text())
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    m = re.search(r'<div class="empty" id="no-documents">([^<]*)</div>', dom)
    assert m and "every one of the 4 input document(s) was dropped" in m.group(1)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser-report") / "out"
    write_run_files(out, write_output(out, 200, seed=1, rows_per_group=100))
    r = subprocess.run(CURATE + ["report", str(out)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return out / "report.html"


@pytest.mark.parametrize("width", [800, 1400])
def test_report_fits_the_window(report_page, tmp_path, width):
    f = measure(report_page, width, tmp_path)
    assert f["scroll_w"] <= f["vw"] and f["overflow"] == [], f["overflow"]
    assert len(f["images"]) >= 4 and all(i["l"] >= 0 and i["r"] <= f["vw"] for i in f["images"])
