"""`curate report`: thresholds found in rule expressions, and the page built from a contract output."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from curate.pipeline.thresholds import parse_thresholds, run_thresholds

sys.path.insert(0, str(Path(__file__).parent))
from inspect_data import write_output, write_run_files  # noqa: E402

COLS = ["ft_dclm", "ft_cosmo", "eflaw", "tokens_per_char"]


@pytest.mark.parametrize("expr,params,want", [
    ("ft_dclm > 0.002 or ft_cosmo > cosmo_min", {"cosmo_min": 0.03}, {("ft_dclm", ">", 0.002), ("ft_cosmo", ">", 0.03)}),
    ("(CAT and 0.1 <= tokens_per_char <= 0.5)", {}, {("tokens_per_char", ">=", 0.1), ("tokens_per_char", "<=", 0.5)}),
    ("70 > eflaw", {}, {("eflaw", "<", 70.0)}),
    ("dclm >= 1e-3", {}, {("ft_dclm", ">=", 0.001)}),            # a short name resolves to its ft_ column
    ("is_category and unknown_col < 3", {}, set()),               # not a float column of the output
    ("eflaw < eflaw", {}, set()),                                 # column vs column is no threshold
])
def test_parse_thresholds(expr, params, want):
    got = {(t.column, t.op, t.value) for t in parse_thresholds(expr, COLS, params, "s")}
    assert got == want


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    write_run_files(out, write_output(out, 400, seed=5, rows_per_group=100))
    return out


def test_thresholds_from_the_run_config(output):
    import json

    run = json.loads((output / "_curate_run.json").read_text())
    got = {(t.column, t.op, t.value, t.stage) for t in run_thresholds(run, COLS)}
    assert got == {("ft_dclm", ">", 0.002, "quality_rule"), ("eflaw", "<", 30.0, "quality_rule"),
                   ("tokens_per_char", ">=", 0.22, "quality_rule"), ("tokens_per_char", "<=", 0.28, "quality_rule")}


def test_report_page(output, tmp_path):
    page = tmp_path / "r.html"
    r = subprocess.run([sys.executable, "-m", "curate.pipeline.cli", "report", str(output), "--html", str(page)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    cols = re.findall(r"<figure data-column='([^']+)'>", html)
    assert sorted(cols) == ["eflaw", "ft_dclm", "tokens_per_char"]
    caption = re.search(r"<figure data-column='tokens_per_char'>.*?<figcaption>([^<]*)</figcaption>", html).group(1)
    assert "0.22 &lt;= tokens_per_char &lt;= 0.28" in caption
    assert "id='status-edited'" in html and "kept documents from data/, dropped ones from rejected/" in html
    assert "length_filter: too_few_words" not in html  # reasons are drawn into the PNG, the table lists them:
    assert "too_few_words" in html


def test_report_on_a_folder_without_output_is_an_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "curate.pipeline.cli", "report", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
