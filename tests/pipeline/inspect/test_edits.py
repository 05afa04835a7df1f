"""Every edit visible: the edits column (core/edits.py) on spans, on ProX's executor, and on a real run
through exact-substring dedup, C4's line filter and the ProX refiner; `curate diff --stage` and the page."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from curate_testing import REPO
from curate_testing.inspect_data import apply_ops, program_strategies
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.core import edits as E
from curate.pipeline import load_config, run_config
from curate.pipeline.inspect.hunks import stage_diff
from curate.refiners import columns as prox
from curate.refiners.spans import UNATTRIBUTED, prox_spans

PROGRAMS = program_strategies()

CURATE = [sys.executable, "-m", "curate.pipeline.cli"]
ALPHABET = "ab\n é"


@st.composite
def span_sets(draw: st.DrawFn, text: str) -> list[E.Span]:
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8)))
    out: list[E.Span] = []
    for a, b in zip(cuts[::2], cuts[1::2]):
        if not out or a >= out[-1][1]:
            out.append((a, b, draw(st.text("xy\n", max_size=3)), (f"L{len(out)}",)))
    return out


@settings(max_examples=300, deadline=None)
@given(st.data(), st.text(ALPHABET, max_size=30))
def test_compose_equals_applying_one_after_the_other(data, x):
    first = data.draw(span_sets(x))
    y = E.apply(x, first)
    second = data.draw(span_sets(y))
    both = E.compose(first, y, second)
    assert E.apply(x, both) == E.apply(y, second)
    assert all(a[1] <= b[0] for a, b in zip(both, both[1:]))  # sorted and disjoint


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=40), st.text(ALPHABET, max_size=40))
def test_diff_spans_replay_and_undo(before, after):
    spans = E.diff_spans(before, after)
    assert E.apply(before, spans) == after
    assert E.undo(after, E.to_records("c4_quality", before, spans)) == before


def test_undo_over_stages_and_a_mismatch():
    x = "one two\nthree four\nfive"
    a = [(3, 7, "", ())]  # " two"
    y = E.apply(x, a)
    b = [(4, 15, "", ("remove_lines(line_start=1, line_end=1)",))]  # "three four\n"
    z = E.apply(y, b)
    recs = E.to_records("exact_substring_dedup", x, a) + E.to_records("prox_refine", y, b)
    assert [s for s, _, _ in E.stage_texts(z, recs)] == ["exact_substring_dedup", "prox_refine"]
    assert E.undo(z, recs) == x and E.stage_texts(z, recs)[1][1] == y
    with pytest.raises(ValueError):
        E.undo("one", recs)  # a cut offset past the end of the text
    d = stage_diff(z, recs)
    assert d is not None and d.stages == {"exact_substring_dedup": 1, "prox_refine": 1}
    removed = [r for r in d.rows if r.removed]
    assert [(r.line_start, r.removed_by) for r in removed] == [(1, ("prox_refine: " + b[0][3][0],))]
    assert d.rows[0].normalized_by == ("exact_substring_dedup",) and d.rows[0].new == "one"


def test_a_last_line_cut_with_the_newline_before_it_is_a_removed_row():
    call = "remove_lines(line_start=1, line_end=1)"
    recs = E.to_records("prox_refine", "keep\ngone", [(4, 9, "", (call,))])
    d = stage_diff("keep", recs)
    assert d is not None
    assert [(r.line_start, r.old, r.removed_by) for r in d.rows] == [
        (0, "keep", ()),
        (1, "\ngone", (f"prox_refine: {call}",)),
    ]


def test_a_document_prox_dropped_after_its_program_shows_the_program():
    """Its recorded edits are an earlier stage's; why ProX dropped it is in its program's ops."""
    from curate.pipeline.inspect.hunks import doc_diff

    text = "a b c\nfooter"
    recs = E.to_records("exact_substring_dedup", "a b c x y\nfooter", [(5, 9, "", ())])
    ops = json.dumps(
        [{"call": "remove_lines(line_start=0, line_end=1)", "op": "remove_lines", "line_start": 0, "line_end": 1}]
    )
    d = doc_diff(text, None, ops, dropped=True, recorded=recs)
    assert [r.removed_by for r in d.rows] == [("remove_lines(line_start=0, line_end=1)",)] * 2
    kept = doc_diff(text, None, None, dropped=False, recorded=recs)
    assert kept.stages == {"exact_substring_dedup": 1}


@settings(max_examples=200, deadline=None)
@given(*PROGRAMS)
def test_prox_spans_are_exact_and_attributed(lines, ops):
    """Normalizations then removals as spans of the refiner's input, each naming its calls (never the
    difflib fallback), and the input rebuilt from the output."""
    text, out = apply_ops(lines, ops)
    if out.text == text:
        return
    spans = prox_spans(text, out.edits, out.text)
    calls = {e["call"] for e in out.edits}
    assert all(s[3] and UNATTRIBUTED not in s[3] and set(s[3]) <= calls for s in spans)
    assert E.undo(out.text, E.to_records("prox_refine", text, spans)) == text


# ---------------------------------------------------------------------------- a real run


def _config(tmp: Path, out: Path, record: bool) -> Path:
    cfg = {
        "name": "edits-real",
        "input": {"format": "jsonl", "path": str(REPO / "data" / "sample"), "glob": "dolma-*.jsonl.gz", "id_key": "id"},
        "output": {"path": str(out), "keep_rejected": True, "rows_per_group": 200, "record_edits": record},
        "executor": {"kind": "local", "tasks": 1},
        "stages": [
            {"stage": "length_filter", "min_words": 5},
            {"stage": "exact_substring_dedup", "units": "tokens", "min_length": 50},
            {"stage": "c4_quality", "min_num_sentences": 1, "filter_curly_bracket": False},
            {"stage": "prox_refine", "backend": "boilerplate"},
        ],
    }
    path = tmp / f"cfg-{record}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("edits-real")
    outs = []
    for record in (True, False):
        out = tmp / f"out-{record}"
        stats = run_config(load_config(_config(tmp, out, record)), progress=False)
        assert stats["complete"] and stats["conserved"]
        outs.append(out)
    return outs[0], outs[1]


def _rows(out: Path) -> list[dict]:
    rows = []
    for f in sorted(out.glob("data/*.parquet")) + sorted(out.glob("rejected/*/*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def _inputs() -> dict[tuple[str, int], str]:
    got = {}
    for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            for i, line in enumerate(fh):
                got[(str(f), i)] = json.loads(line).get("text") or ""
    return got


@pytest.mark.slow
def test_original_text_is_rebuilt_for_every_document_of_a_real_run(runs):
    on, _ = runs
    inputs = _inputs()
    rows = _rows(on)
    touched: dict[str, int] = {}
    for r in rows:
        recs = r.get(E.EDITS) or []
        assert E.undo(r["text"], recs) == inputs[(r["source_file"], r["source_record"])], r["id"]
        for stage, base, eds in E.stage_texts(r["text"], recs):
            touched[stage] = touched.get(stage, 0) + 1
            assert all(base[e["start"] : e["end"]] == e["old"] for e in eds)
            if stage == "prox_refine":  # the refiner's input is what it stores as its original text
                assert base == r[prox.ORIGINAL_TEXT]
                assert all(e["note"] for e in eds)
    assert touched.get("exact_substring_dedup", 0) >= 30
    assert touched.get("c4_quality", 0) >= 30 and touched.get("prox_refine", 0) >= 3
    several = [r for r in rows if len({e["stage"] for e in r.get(E.EDITS) or []}) >= 2]
    assert several, "no document was edited by two stages"


@pytest.mark.slow
def test_record_edits_off_writes_the_same_text_without_the_column(runs):
    on, off = runs
    a = {r["id"]: r["text"] for r in _rows(on)}
    b = _rows(off)
    assert {r["id"]: r["text"] for r in b} == a
    assert all(E.EDITS not in r for r in b)


@pytest.mark.slow
def test_cli_diff_by_stage_on_a_real_run(runs):
    on, _ = runs
    r = subprocess.run(
        CURATE + ["diff", str(on), "--stage", "exact_substring_dedup", "--limit", "4", "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    docs = r.stdout.split("━━ ")[1:]
    assert len(docs) == 4
    for d in docs:
        assert re.search(r"edited by .*exact_substring_dedup \(\d+ spans?\)", d)
        assert re.search(r"^@@ \[\d+\](–\[\d+\])? (changed|removed) by exact_substring_dedup", d, re.M)
    # the stage drops nothing: the old question finds nothing, and says where its work is
    r = subprocess.run(
        CURATE + ["diff", str(on), "--status", "dropped:exact_substring_dedup"], capture_output=True, text=True
    )
    assert r.returncode == 1 and "--stage exact_substring_dedup" in r.stderr
    r = subprocess.run(
        CURATE + ["diff", str(on), "--status", "edited:c4_quality", "--limit", "2", "--color", "never"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and re.search(r"(changed|removed) by c4_quality", r.stdout), r.stderr


@pytest.mark.slow
def test_a_document_edited_by_several_stages_shows_each_label(runs, tmp_path):
    on, _ = runs
    rows = _rows(on)
    doc = next(r for r in rows if {e["stage"] for e in r.get(E.EDITS) or []} >= {"exact_substring_dedup", "c4_quality"})
    r = subprocess.run(
        CURATE + ["diff", str(on), "--id", doc["id"], "--color", "never", "--full"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    for stage in {e["stage"] for e in doc[E.EDITS]}:
        assert re.search(rf"^@@ .* by .*{stage}", r.stdout, re.M), stage
    page = tmp_path / "d.html"
    r = subprocess.run(
        CURATE + ["diff", str(on), "--id", doc["id"], "--html", str(page)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    data = json.loads(
        re.search(r'<script id="curate-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    d = data["docs"][0]
    labels = {x for row in d["diff"]["rows"] for s in row["s"] if isinstance(s, list) for x in s[2]}
    assert {"exact_substring_dedup", "c4_quality"} <= labels
    assert set(d["stages"]) == {e["stage"] for e in doc[E.EDITS]}
