"""`curate diff`: edit replay against an oracle executor, selection, streaming, terminal output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from curate_testing.inspect_data import execute, write_empty_output, write_output
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.pipeline.inspect.hunks import UNATTRIBUTED, doc_diff, replay
from curate.pipeline.inspect.select import Selection, select, status_counts

ANSI = re.compile(r"\x1b\[")
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")
CURATE = [sys.executable, "-m", "curate.pipeline.cli"]


# ------------------------------------------------------------------ replay vs the oracle executor

_line = st.text(alphabet="ab c.", max_size=12)


@st.composite
def doc_and_edits(draw):  # type: ignore[no-untyped-def]
    lines = draw(st.lists(_line, min_size=1, max_size=12))
    text = "\n".join(lines)
    edits = []
    for _ in range(draw(st.integers(0, 3))):
        src = draw(st.text(alphabet="ab c.", min_size=1, max_size=3))
        tgt = draw(st.text(alphabet="abXY .", max_size=3))
        edits.append(
            {
                "call": f"normalize(source_str={src!r}, target_str={tgt!r})",
                "op": "normalize",
                "source": src,
                "target": tgt,
                "count": 0,
            }
        )
    for _ in range(draw(st.integers(0, 3))):
        a = draw(st.integers(0, len(lines) - 1))
        b = draw(st.integers(a, len(lines) - 1))
        edits.append(
            {
                "call": f"remove_lines(line_start={a}, line_end={b})",
                "op": "remove_lines",
                "line_start": a,
                "line_end": b,
            }
        )
    return text, edits


@settings(max_examples=400, deadline=None)
@given(doc_and_edits())
def test_replay_matches_oracle_and_labels_every_change(case):
    text, edits = case
    final, rows = replay(text, edits)
    assert final == execute(text, edits)
    removes = [e for e in edits if e["op"] == "remove_lines"]
    norm_calls = {e["call"] for e in edits if e["op"] == "normalize"}
    # rows cover the original lines in order, and their old text is the original
    assert "\n".join(r.old for r in rows) == text
    for r in rows:
        for ln in range(r.line_start, r.line_end + 1):
            covering = {e["call"] for e in removes if e["line_start"] <= ln <= e["line_end"]}
            if r.removed:
                assert set(r.removed_by) <= covering and covering, (r, covering)
        if not r.removed and r.line_start == r.line_end:
            assert bool({e["call"] for e in removes if e["line_start"] <= r.line_start <= e["line_end"]}) is False
        for s in r.segments:
            if not s.plain:  # every changed piece names a normalize call that was really applied
                assert s.calls and set(s.calls) <= norm_calls
            else:
                assert s.old == s.new


def test_labels_name_the_call_that_made_each_change():
    text = "Home | Menu\nThe  cat sat.\nBuy now\nThe  end."
    edits = [
        {
            "call": 'normalize(source_str="  ", target_str=" ")',
            "op": "normalize",
            "source": "  ",
            "target": " ",
            "count": 2,
        },
        {"call": "remove_lines(line_start=0, line_end=0)", "op": "remove_lines", "line_start": 0, "line_end": 0},
        {"call": "remove_lines(line_start=2, line_end=2)", "op": "remove_lines", "line_start": 2, "line_end": 2},
    ]
    d = doc_diff(execute(text, edits), text, json.dumps(edits))
    assert d.consistent
    assert [r.removed_by for r in d.rows] == [
        ("remove_lines(line_start=0, line_end=0)",),
        (),
        ("remove_lines(line_start=2, line_end=2)",),
        (),
    ]
    changed = [s for s in d.rows[1].segments if not s.plain]
    assert [(s.old, s.new, s.calls) for s in changed] == [("  ", " ", ('normalize(source_str="  ", target_str=" ")',))]
    assert d.lines_removed == 2 and d.rows_normalized == 2


def test_edits_that_do_not_explain_the_text_fall_back_to_an_unlabelled_diff():
    text = "one\ntwo\nthree"
    edits = [{"call": "remove_lines(line_start=0, line_end=0)", "op": "remove_lines", "line_start": 0, "line_end": 0}]
    d = doc_diff("one\nthree", text, json.dumps(edits))  # the stored text lost line 1, not 0
    assert not d.consistent and "does not give the stored text" in d.note
    assert [r.removed_by for r in d.rows] == [(), (UNATTRIBUTED,), ()]


# ------------------------------------------------------------------ selection over a contract output


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("inspect") / "out"
    counts = write_output(out, 600, seed=3, rows_per_group=50, docs_per_file=250)
    return out, counts


def test_status_counts_cover_the_whole_output(output):
    out, counts = output
    assert status_counts(str(out)) == {k: v for k, v in counts.items() if v}


@pytest.mark.parametrize(
    "word,expect",
    [
        ("edited", {"edited"}),
        ("ignored", {"program_ignored"}),
        ("dropped", {"dropped", "dropped_by_doc", "dropped_by_chunk"}),
        ("dropped:length_filter", {"dropped"}),
        ("kept,dropped_by_doc", {"kept", "dropped_by_doc"}),
    ],
)
def test_status_selection(output, word, expect):
    out, counts = output
    got = list(select(str(out), Selection.build(status=word)))
    assert {r.status for r in got} == expect
    assert len(got) == sum(counts.get(s, 0) for s in expect)


def test_id_grep_limit_and_errors(output):
    out, _ = output
    one = list(select(str(out), Selection.build(ids=["doc-000123"])))
    assert [r.id for r in one] == ["doc-000123"] and one[0].source == "shard-00.jsonl.gz #123"
    limited = list(select(str(out), Selection.build(status="edited", limit=7)))
    assert len(limited) == 7 and all(r.status == "edited" for r in limited)
    hits = list(select(str(out), Selection.build(grep=r"quartz", ignore_case=True)))
    assert hits and all(re.search("quartz", (r.original_text or "") + r.text, re.I) for r in hits)
    errs = list(select(str(out), Selection.build(status="errors")))
    assert errs and all(r.errors for r in errs) and {r.status for r in errs} == {"program_ignored"}


def test_sample_is_seeded_uniform_and_matches_the_filter(output):
    out, counts = output
    a = [r.id for r in select(str(out), Selection.build(status="edited", sample=10, seed=1))]
    b = [r.id for r in select(str(out), Selection.build(status="edited", sample=10, seed=1))]
    c = [r.id for r in select(str(out), Selection.build(status="edited", sample=10, seed=2))]
    assert a == b and a != c and len(a) == 10 == len(set(a))
    every = [r.id for r in select(str(out), Selection.build(status="edited"))]
    assert set(a) <= set(every)
    # every match can be drawn: over many seeds the samples reach most of the population
    reached = {r.id for s in range(40) for r in select(str(out), Selection.build(status="edited", sample=10, seed=s))}
    assert len(reached) > 0.8 * counts["edited"]


def test_per_status_cap_shows_every_status(output):
    out, counts = output
    got = list(select(str(out), Selection.build(per_status=3)))
    per: dict[str, int] = {}
    for r in got:
        per[r.status] = per.get(r.status, 0) + 1
    assert per == {k: min(3, v) for k, v in counts.items() if v}


def test_selection_reads_row_groups_lazily(output, monkeypatch):
    """--limit stops reading; full row groups are read only where a row matches."""
    out, _ = output
    full_reads: list[int] = []
    orig = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kw):  # type: ignore[no-untyped-def]
        if columns is None:
            full_reads.append(i)
        return orig(self, i, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    assert len(list(select(str(out), Selection.build(limit=3)))) == 3
    assert full_reads == [0]
    full_reads.clear()
    list(select(str(out), Selection.build(ids=["doc-000599"])))
    assert len(full_reads) == 1  # cheap columns everywhere, the full row group once


# ------------------------------------------------------------------ the command line


def _diff(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CURATE + ["diff", str(out), *args], capture_output=True, text=True, timeout=120)


def test_terminal_output_is_labelled_and_plain_when_piped(output):
    out, _ = output
    r = _diff(out, "--status", "edited", "--limit", "5")
    assert r.returncode == 0, r.stderr
    assert not ANSI.search(r.stdout)
    assert r.stdout.count("━━ doc-") == 5
    assert re.search(r"^@@ \[\d+\](–\[\d+\])? removed by remove_lines\(line_start=\d+, line_end=\d+\)$", r.stdout, re.M)
    assert re.search(r'^@@ \[\d+\] changed by normalize\(source_str="\w+", target_str="\w+"\)$', r.stdout, re.M)
    # a normalized row shows the old line then the new one, same line number
    m = re.search(r"^-(\[\d+\]) .*\n\+\1 ", r.stdout, re.M)
    assert m
    colour = _diff(out, "--status", "edited", "--limit", "1", "--color", "always")
    assert ANSI.search(colour.stdout)


def test_header_shows_drop_reason_and_errors(output):
    out, _ = output
    r = _diff(out, "--status", "ignored", "--limit", "1")
    assert "program_ignored" in r.stdout and "error: remove_lines(line_start=x): bad argument" in r.stdout
    r = _diff(out, "--status", "dropped_by_doc", "--limit", "1")
    assert "dropped by prox_refine: dropped_by_doc" in r.stdout and "program (doc):   drop_doc()" in r.stdout
    assert re.search(r"^@@ text as dropped, \d+ line\(s\)$", r.stdout, re.M) and "@@ unchanged" not in r.stdout
    r = _diff(out, "--status", "kept", "--limit", "1")
    assert re.search(r"^@@ unchanged, \d+ line\(s\)$", r.stdout, re.M)


@pytest.mark.parametrize("args", [[], ["--limit", "0"], ["--color", "always", "--limit", "0"]])
def test_pipe_closed_early_is_not_an_error(output, args):
    """`curate diff OUT | head -1`: curate's own exit status is 0 (pipefail), nothing on stderr."""
    out, _ = output
    cmd = " ".join(CURATE + ["diff", str(out), *args])
    p = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd} | head -1"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 1 and "doc-" in ANSI_CODE.sub("", p.stdout)
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr and "Exception ignored" not in p.stderr


def test_reader_gone_mid_output(output):
    """The reader closes the pipe while curate is blocked writing (far more than a pipe buffer left)."""
    out, _ = output
    proc = subprocess.Popen(
        CURATE + ["diff", str(out), "--limit", "0", "--full"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith("━━ doc-".encode())
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and err == b"", err.decode()[-2000:]


def test_default_shows_changed_documents_first(output):
    """Without --status, the first 20 documents are the changed ones (edited first), not 20 untouched ones."""
    out, counts = output
    r = _diff(out)
    assert r.returncode == 0, r.stderr
    statuses = re.findall(r"^━━ doc-\d+  (\w+)", r.stdout, re.M)
    assert len(statuses) == 20 and set(statuses) == {"edited"} and counts["edited"] >= 20
    assert f"showing 20 of {sum(counts.values()):,} documents, changed ones first" in r.stderr
    r = _diff(out, "--limit", "200")
    statuses = re.findall(r"^━━ doc-\d+  (\w+)", r.stdout, re.M)
    order = ["edited", "program_ignored", "dropped_by_chunk", "dropped_by_doc", "dropped", "kept"]
    assert statuses == sorted(statuses, key=order.index) and len(statuses) == 200
    assert "showing" not in r.stderr  # the user chose the limit


@pytest.mark.parametrize("keep_rejected", [False, True])
def test_output_with_no_documents(tmp_path, keep_rejected):
    """A run that dropped everything: a zero-row data file; a clear line and exit 0, in the terminal and as a page."""
    out = tmp_path / "out"
    write_empty_output(out, 5, keep_rejected=keep_rejected)
    r = _diff(out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(
        f"{out} holds no documents: every one of the 5 input document(s) was dropped (length_filter: too_few_words 5)"
    )
    assert ("set output.keep_rejected: true" in r.stdout) is (not keep_rejected)
    page = tmp_path / "d.html"
    r = _diff(out, "--html", str(page))
    assert r.returncode == 0, r.stderr
    data = json.loads(
        re.search(r'<script id="curate-data" type="application/json">(.*?)</script>', page.read_text()).group(1)
    )
    assert data["docs"] == [] and data["empty"].startswith(f"{out} holds no documents")


def test_run_files_without_parquet_are_an_empty_output(tmp_path):
    """A run that wrote no Parquet at all (older writer): still an output, with no documents."""
    out = tmp_path / "out"
    write_empty_output(out, 3)
    (out / "data" / "00000.parquet").unlink()
    r = _diff(out, "--status", "edited")
    assert r.returncode == 0 and "holds no documents" in r.stdout, r.stderr


def test_extra_files_in_the_output_are_not_read(output, tmp_path):
    """A dataset card, a report, logs, a work folder, a running write's temporary file: only
    data/*.parquet and rejected/STAGE/*.parquet are output."""
    import shutil

    src, counts = output
    out = tmp_path / "out"
    shutil.copytree(src, out)
    (out / "README.md").write_text("# dataset card\n")
    (out / "report.html").write_text("<html></html>")
    for d in ("logs/00_main", "_work/x", "data/sub", "rejected/length_filter/sub"):
        (out / d).mkdir(parents=True)
    (out / "logs" / "00_main" / "x.parquet").write_bytes(b"not parquet")
    (out / "data" / "README.md").write_text("not data")
    (out / "data" / ".00009.parquet.partial").write_bytes(b"half a file")
    (out / "data" / "sub" / "y.parquet").write_bytes(b"nested: not ours")
    (out / "rejected" / "notes.parquet").write_bytes(b"not a stage folder")
    assert status_counts(str(out)) == {k: v for k, v in counts.items() if v}
    r = _diff(out, "--status", "edited", "--limit", "2")
    assert r.returncode == 0 and r.stdout.count("━━ doc-") == 2, r.stderr


def test_dropped_documents_show_their_scores(output, tmp_path):
    """Why a filter dropped a document: its numeric columns next to the reason (terminal and page)."""
    out, _ = output
    want = list(select(str(out), Selection.build(status="dropped:length_filter", limit=1)))[0]
    row = pq.read_table(next((out / "rejected" / "length_filter").glob("*.parquet"))).to_pylist()
    row = next(x for x in row if x["id"] == want.id)
    r = _diff(out, "--id", want.id)
    line = f"   annotations: ft_dclm {row['ft_dclm']:.4g} · eflaw {row['eflaw']:.4g} · tokens_per_char {row['tokens_per_char']:.4g}"
    assert line in r.stdout.splitlines(), r.stdout
    assert "annotations:" not in _diff(out, "--status", "edited", "--limit", "1").stdout  # kept ones: the page only
    page = tmp_path / "d.html"
    assert _diff(out, "--id", want.id, "--html", str(page)).returncode == 0
    data = json.loads(
        re.search(r'<script id="curate-data" type="application/json">(.*?)</script>', page.read_text()).group(1)
    )
    assert data["docs"][0]["annotations"] == {
        "ft_dclm": f"{row['ft_dclm']:.4g}",
        "eflaw": f"{row['eflaw']:.4g}",
        "tokens_per_char": f"{row['tokens_per_char']:.4g}",
    }


def test_output_named_by_its_config_or_a_folder_inside_it(output, tmp_path):
    """`curate diff CONFIG`, `curate diff OUT/data`, `OUT/rejected/STAGE`: the output they belong to."""
    import yaml
    from curate_testing.inspect_data import write_run_files

    src, counts = output
    out = tmp_path / "out"
    import shutil

    shutil.copytree(src, out)
    write_run_files(out, counts)
    cfg = {
        "name": "t",
        "input": {"format": "jsonl", "path": str(tmp_path)},
        "output": {"path": str(out)},
        "stages": [{"stage": "length_filter", "min_words": 5}],
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    want = _diff(out, "--status", "edited", "--limit", "2").stdout
    assert want.count("━━ doc-") == 2
    for arg in (tmp_path / "cfg.yaml", out / "data", out / "rejected", out / "rejected" / "length_filter"):
        r = _diff(arg, "--status", "edited", "--limit", "2")
        assert r.returncode == 0 and r.stdout == want, (arg, r.stderr)
    r = _diff(next((out / "data").glob("*.parquet")))
    assert (
        r.returncode == 2
        and "pass the run's output folder (the one holding data/ and rejected/) or its config" in r.stderr
    )
    cfg["output"]["path"] = str(tmp_path / "never-ran")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    r = _diff(tmp_path / "cfg.yaml")
    assert r.returncode == 2 and f"its output folder {tmp_path / 'never-ran'} does not exist" in r.stderr


def test_bad_selection_is_one_line_error(output, tmp_path):
    out, _ = output
    r = _diff(out, "--status", "bogus")
    assert (
        r.returncode == 2
        and r.stderr.startswith("error: --status: unknown status 'bogus'")
        and "Traceback" not in r.stderr
    )
    r = _diff(tmp_path / "nope")
    assert r.returncode == 2 and "no such output folder" in r.stderr
    r = _diff(out, "--id", "no-such-doc")
    assert r.returncode == 1 and "no document matches" in r.stderr
