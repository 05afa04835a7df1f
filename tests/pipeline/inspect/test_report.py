"""`curate report`: thresholds found in rule expressions, and the page built from a contract output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from curate_testing.inspect_data import write_empty_output, write_output, write_run_files
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.filters.rule import Rule
from curate.pipeline.inspect.report import _plt, histogram_figure
from curate.pipeline.inspect.thresholds import Threshold, rule_thresholds, run_thresholds

CURATE = [sys.executable, "-m", "curate.pipeline.cli"]

COLS = ["ft_dclm", "ft_cosmo", "eflaw", "tokens_per_char"]


@pytest.mark.parametrize(
    "expr,params,want",
    [
        (
            "ft_dclm > 0.002 or ft_cosmo > cosmo_min",
            {"cosmo_min": 0.03},
            {("ft_dclm", ">", 0.002), ("ft_cosmo", ">", 0.03)},
        ),
        (
            "(CAT and 0.1 <= tokens_per_char <= 0.5)",
            {},
            {("tokens_per_char", ">=", 0.1), ("tokens_per_char", "<=", 0.5)},
        ),
        ("70 > eflaw", {}, {("eflaw", "<", 70.0)}),
        ("dclm >= 1e-3", {}, {("ft_dclm", ">=", 0.001)}),  # a short name resolves to its ft_ column
        ("is_category and unknown_col < 3", {}, set()),  # not a float column of the output
        ("eflaw < eflaw", {}, set()),  # column vs column is no threshold
        # a string is a value, not an expression (a re-tokenizer read a threshold inside the quotes)
        ("'eflaw < 3' in tags and ft_cosmo > -0.5", {}, {("ft_cosmo", ">", -0.5)}),
        ("ft_dclm == kind", {"kind": "hq"}, set()),  # a string param is no number
    ],
)
def test_parse_thresholds(expr, params, want):
    got = {(t.column, t.op, t.value) for t in rule_thresholds(Rule(expr, params=params), COLS, "s")}
    assert got == want


@pytest.mark.parametrize(
    "expr,want",
    [
        # GneissWeb's two sets: each threshold knows the condition AND-ed with it
        ("(CAT and eflaw < 70) or (NCAT and eflaw < 30)", {("eflaw", "<", 70.0, "CAT"), ("eflaw", "<", 30.0, "NCAT")}),
        (
            "(CAT and 0.1 <= tokens_per_char <= 0.5) or (NCAT and 0.22 <= tokens_per_char <= 0.28)",
            {
                ("tokens_per_char", ">=", 0.1, "CAT"),
                ("tokens_per_char", "<=", 0.5, "CAT"),
                ("tokens_per_char", ">=", 0.22, "NCAT"),
                ("tokens_per_char", "<=", 0.28, "NCAT"),
            },
        ),
        ("not is_category and eflaw < 3", {("eflaw", "<", 3.0, "not is_category")}),
        ("CAT and (eflaw < 70 or ft_dclm > 0.5)", {("eflaw", "<", 70.0, "CAT"), ("ft_dclm", ">", 0.5, "CAT")}),
        ("ft_dclm > 0.002 or (ft_cosmo > 0.03)", {("ft_dclm", ">", 0.002, ""), ("ft_cosmo", ">", 0.03, "")}),
    ],
)
def test_thresholds_know_their_guard(expr, want):
    got = rule_thresholds(Rule(expr, {"CAT": "is_category", "NCAT": "not is_category"}), COLS, "s")
    assert {(t.column, t.op, t.value, t.when) for t in got} == want
    for t in got:
        assert t.when_means == {"CAT": "CAT = is_category", "NCAT": "NCAT = not is_category"}.get(t.when, "")


def _overlap(a: dict, b: dict) -> bool:
    return a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]


def _check_layout(layout: dict, n_labels: int) -> None:
    """Every label drawn, none overlapping another (brute force over pairs), all inside the axes
    horizontally, all above the highest bar."""
    labels = layout["labels"]
    assert len(labels) == n_labels
    for i, a in enumerate(labels):
        assert -1e-6 <= a["x0"] < a["x1"] <= 1 + 1e-6, a
        assert a["y0"] >= layout["bars_top"] - 1e-6, (a, layout["bars_top"])
        for b in labels[i + 1 :]:
            assert not _overlap(a, b), (a, b)


_RNG = np.random.default_rng(0)
_VALUES = _RNG.normal(0.25, 0.05, 3000)


def _draw(ts: list[Threshold]) -> dict:
    layout: dict = {}
    _plt().close(histogram_figure("tokens_per_char", _VALUES[:2000], _VALUES[2000:], ts, 40, layout))
    return layout


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 1.0, allow_nan=False).map(lambda v: round(v, 3)),
            st.sampled_from(["<", "<=", ">", ">="]),
            st.sampled_from(["", "CAT", "NCAT", "not is_category"]),
        ),
        min_size=1,
        max_size=7,
        unique=True,
    )
)
def test_threshold_labels_never_overlap(ths):
    ts = [Threshold("tokens_per_char", op, v, "s", "src", when) for v, op, when in ths]
    layout = _draw(ts)
    # one label per (value, guard, op): the same threshold found twice is drawn once
    _check_layout(layout, len({(t.value, t.when, t.op) for t in ts}))


def test_gneissweb_threshold_labels_name_their_set():
    ts = [
        Threshold("tokens_per_char", op, v, "s", "src", w)
        for v, op, w in ((0.1, ">=", "CAT"), (0.5, "<=", "CAT"), (0.22, ">=", "NCAT"), (0.28, "<=", "NCAT"))
    ]
    layout = _draw(ts)
    assert sorted(lb["text"] for lb in layout["labels"]) == ["CAT ≤ 0.5", "CAT ≥ 0.1", "NCAT ≤ 0.28", "NCAT ≥ 0.22"]
    _check_layout(layout, 4)


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    write_run_files(out, write_output(out, 400, seed=5, rows_per_group=100))
    return out


def test_thresholds_from_the_run_config(output):
    import json

    run = json.loads((output / "_curate_run.json").read_text())
    got = {(t.column, t.op, t.value, t.stage) for t in run_thresholds(run, COLS)}
    assert got == {
        ("ft_dclm", ">", 0.002, "quality_rule"),
        ("eflaw", "<", 30.0, "quality_rule"),
        ("tokens_per_char", ">=", 0.22, "quality_rule"),
        ("tokens_per_char", "<=", 0.28, "quality_rule"),
    }


def test_thresholds_come_from_the_stage_options_model():
    """A gneissweb_ensemble entry states no rule: its options model brings GneissWeb's preset, and a
    params override in the entry moves the threshold, as the run compiled it."""
    cols = COLS + ["ft_medical"]
    entry = {"stage": "gneissweb_ensemble", "label": "gw", "params": {"cosmo_min": 0.05}, "resources": {"cpus": 1}}
    got = {(t.column, t.op, t.value, t.when, t.stage) for t in run_thresholds({"decisive": {"stages": [entry]}}, cols)}
    assert got == {
        ("ft_dclm", ">", 0.002, "", "gw"),
        ("ft_cosmo", ">", 0.05, "", "gw"),
        ("eflaw", "<", 70.0, "CAT", "gw"),
        ("eflaw", "<", 30.0, "NCAT", "gw"),
        ("tokens_per_char", ">=", 0.1, "CAT", "gw"),
        ("tokens_per_char", "<=", 0.5, "CAT", "gw"),
        ("tokens_per_char", ">=", 0.22, "NCAT", "gw"),
        ("tokens_per_char", "<=", 0.28, "NCAT", "gw"),
    }


def test_thresholds_of_an_unreadable_stage_are_a_problem_line():
    """A stage this install does not know (a plugin) or options it refuses: said, not silently lost."""
    run = {
        "decisive": {
            "stages": [
                {"stage": "no_such_stage", "keep": "ft_dclm > 0.5"},
                {"stage": "quality_rule", "keep": "ft_dclm >", "label": "bad"},
                {"stage": "quality_rule", "keep": "ft_dclm > 0.5"},
            ]
        }
    }
    problems: list[str] = []
    got = run_thresholds(run, COLS, problems)
    assert [(t.column, t.op, t.value, t.stage) for t in got] == [("ft_dclm", ">", 0.5, "quality_rule")]
    assert len(problems) == 2 and problems[0].startswith("no_such_stage: thresholds not shown")
    assert problems[1].startswith("bad: thresholds not shown: ValidationError")


def test_report_page(output, tmp_path):
    page = tmp_path / "r.html"
    r = subprocess.run(
        [sys.executable, "-m", "curate.pipeline.cli", "report", str(output), "--html", str(page)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    cols = re.findall(r"<figure data-column='([^']+)'", html)
    assert sorted(cols) == ["eflaw", "ft_dclm", "tokens_per_char"]
    caption = re.search(r"<figure data-column='tokens_per_char'.*?<figcaption[^>]*>([^<]*)</figcaption>", html).group(1)
    assert caption == "quality_rule: 0.22 &lt;= tokens_per_char &lt;= 0.28"
    assert "id='status-edited'" in html and "kept documents from data/, dropped ones from rejected/" in html
    assert "length_filter: too_few_words" not in html  # reasons are drawn into the PNG, the table lists them:
    assert "too_few_words" in html


def test_report_on_a_folder_without_output_is_an_error(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "curate.pipeline.cli", "report", str(tmp_path)], capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr


def _layouts(html: str) -> dict[str, dict]:
    return {
        col: json.loads(unescape(lay))
        for col, lay in re.findall(r"<figure data-column='([^']+)' data-layout='([^']*)'", html)
    }


def test_report_labels_the_gneissweb_sets(tmp_path):
    """The preset's rule lives in code: its CAT and NCAT thresholds are drawn, labelled and captioned as such."""
    out = tmp_path / "out"
    write_run_files(out, write_output(out, 300, seed=2, rows_per_group=100))
    run = json.loads((out / "_curate_run.json").read_text())
    run["decisive"]["stages"][1] = {"stage": "quality_rule", "preset": "gneissweb"}
    (out / "_curate_run.json").write_text(json.dumps(run))
    page = tmp_path / "r.html"
    r = subprocess.run(CURATE + ["report", str(out), "--html", str(page)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    lay = _layouts(html)
    assert sorted(lb["text"] for lb in lay["tokens_per_char"]["labels"]) == [
        "CAT ≤ 0.5",
        "CAT ≥ 0.1",
        "NCAT ≤ 0.28",
        "NCAT ≥ 0.22",
    ]
    assert sorted(lb["text"] for lb in lay["eflaw"]["labels"]) == ["CAT < 70", "NCAT < 30"]
    assert [lb["text"] for lb in lay["ft_dclm"]["labels"]] == ["> 0.002"]
    for _col, layout in lay.items():
        _check_layout(layout, len(layout["labels"]))
    caption = re.search(r"<figure data-column='tokens_per_char'.*?<figcaption[^>]*>([^<]*)</figcaption>", html).group(1)
    assert unescape(caption) == (
        "quality_rule: CAT: 0.1 <= tokens_per_char <= 0.5; NCAT: 0.22 <= tokens_per_char <= 0.28 "
        "(CAT = is_category; NCAT = not is_category)"
    )


def test_report_on_an_output_with_no_documents(tmp_path):
    """Every document dropped: a zero-row data file with the full schema; the report says so, exit 0."""
    out = tmp_path / "out"
    write_empty_output(out, 7)
    r = subprocess.run(CURATE + ["report", str(out)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    html = (out / "report.html").read_text()
    note = re.search(r"<section id=no-documents><h2>No documents</h2><p>([^<]*)</p>", html).group(1)
    assert "every one of the 7 input document(s) was dropped (length_filter: too_few_words 7)" in note
    assert "set output.keep_rejected: true" in note
    assert "no documents in the output" in html and "0 rows read" in html
    assert "<b>0</b>" in html  # output documents


def test_report_without_a_conserved_key_recomputes_it(output, tmp_path):
    """A stats.json whose accounting flag has another name: the report checks the counts itself."""
    stats = json.loads((output / "stats.json").read_text())
    stats.pop("conserved")
    for s in stats["stages"]:
        s.pop("conserved")
    stats["stages"][1]["docs_out"] -= 1  # one document unaccounted for in length_filter
    other = tmp_path / "out"
    other.mkdir()
    for name in ("data", "rejected"):
        (other / name).symlink_to(output / name)
    (other / "stats.json").write_text(json.dumps(stats))
    page = tmp_path / "r.html"
    r = subprocess.run(
        CURATE + ["report", str(other), "--html", str(page)], capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "conserved<b>NO</b>" in html
    rows = re.findall(r"<tr><td>([a-z_]+)</td>.*?<td>(✓|<b style='color:#c0392b'>✗</b>)</td></tr>", html)
    assert [(label, ok == "✓") for label, ok in rows] == [
        ("read", True),
        ("length_filter", False),
        ("prox_refine", True),
        ("write", True),
    ]


def test_rows_are_counted_in_files_without_annotations(tmp_path):
    """An output of a filter-only run (no float column, no ProX status): every row is still counted."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "rejected" / "length_filter").mkdir(parents=True)
    pq.write_table(
        pa.table({"id": [f"k{i}" for i in range(30)], "text": ["x y z"] * 30}),
        out / "data" / "00000.parquet",
        row_group_size=10,
    )
    pq.write_table(
        pa.table(
            {
                "id": ["d0", "d1"],
                "text": ["a", "b"],
                "drop_stage": ["length_filter"] * 2,
                "drop_reason": ["too_few_words"] * 2,
            }
        ),
        out / "rejected" / "length_filter" / "00000.parquet",
    )
    write_run_files(out, {"kept": 30, "dropped": 2})
    page = tmp_path / "r.html"
    r = subprocess.run(CURATE + ["report", str(out), "--html", str(page)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "32 rows read" in html and "no float annotation column in the output" in html
