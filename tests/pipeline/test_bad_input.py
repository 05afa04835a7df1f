"""The bad-input catalogue: every case is counted (on_error: skip) or stops the run with one line naming
file + record (on_error: fail); nothing crashes with a traceback; every stage's books balance.

The corpus is generated into tmp from real text (the bundled sample) and the real broken WARCs.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curate_testing import DATA, SAMPLE

from curate.core.errors import InputError
from curate.pipeline import parse_config, run_config
from curate.pipeline.cli import main

MiB = 1 << 20


@pytest.fixture(scope="module")
def real_docs() -> list[dict]:
    with gzip.open(SAMPLE / "c4-en-1k.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f][:400]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, real_docs) -> Path:
    root = tmp_path_factory.mktemp("bad-corpus")
    good = [orjson.dumps({"id": f"good{i}", "text": d["text"], "url": d["url"]}) for i, d in enumerate(real_docs[:20])]
    text = real_docs[0]["text"]
    records = {
        "malformed_json": b'{"id": "m1", "text": "' + text[:40].encode() + b"...",
        "invalid_utf8": b'{"id": "u1", "text": "' + text[:20].encode() + b'\xff\xfe\xc3"}',
        "missing_text": orjson.dumps({"id": "x1", "body": text}),
        "null_text": orjson.dumps({"id": "x2", "text": None}),
        "non_string_text": orjson.dumps({"id": "x3", "text": ["a", "list"]}),
        "empty": orjson.dumps({"id": "e1", "text": ""}),
        "whitespace_only": orjson.dumps({"id": "e2", "text": " \n\t\u00a0 \n"}),
        "nul_escaped": orjson.dumps({"id": "z1", "text": text.replace(" ", " \u0000", 3)}),
        "nul_raw_byte": b'{"id": "z2", "text": "a\x00b"}',
        "not_an_object": b'["a", "list"]',
    }
    (root / "jsonl").mkdir()
    lines = good[:10] + list(records.values()) + [b""] + good[10:]
    (root / "jsonl" / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    for name, line in records.items():  # one file per case, for the on_error: fail messages
        (root / "single" / name).mkdir(parents=True)
        (root / "single" / name / "in.jsonl").write_bytes(b"\n".join(good[:3] + [line] + good[3:5]) + b"\n")

    # a 50 MiB document of real text, and a document of one million short lines
    corpus_text = "\n".join(d["text"] for d in real_docs)
    big = (corpus_text * (50 * MiB // len(corpus_text) + 1))[: 50 * MiB]
    (root / "big").mkdir()
    (root / "big" / "in.jsonl").write_text(json.dumps({"id": "big", "text": big}) + "\n" + good[0].decode() + "\n")
    words = corpus_text.split()
    many = "\n".join(words[i % len(words)] for i in range(1_000_000))
    (root / "lines").mkdir()
    (root / "lines" / "in.jsonl").write_text(json.dumps({"id": "lines", "text": many}) + "\n")

    # truncated gzip: half of a real compressed shard
    raw = gzip.compress(b"\n".join(good * 10) + b"\n")
    (root / "gzip").mkdir()
    (root / "gzip" / "cut.jsonl.gz").write_bytes(raw[: len(raw) // 2])

    # Parquet: one good file, one with zeroed pages, one cut in half
    table = pa.table({"id": [f"p{i}" for i in range(200)], "text": [d["text"] for d in real_docs[:200]]})
    (root / "parquet").mkdir()
    pq.write_table(table, root / "parquet" / "good.parquet", row_group_size=50)
    b = bytearray((root / "parquet" / "good.parquet").read_bytes())
    b[len(b) // 3 : len(b) // 3 + 4000] = bytes(4000)
    (root / "parquet" / "zeroed.parquet").write_bytes(bytes(b))
    (root / "parquet" / "cut.parquet").write_bytes((root / "parquet" / "good.parquet").read_bytes()[: len(b) // 2])

    for name in ("clipped.warc.gz", "clueweb09-quirk.warc.gz"):
        (root / "warc" / name.split(".")[0]).mkdir(parents=True)
        shutil.copy(DATA / "warc" / name, root / "warc" / name.split(".")[0] / name)
    return root


def run(path: Path, out: Path, fmt: str = "jsonl", stages: list | None = None, **inp) -> dict:
    cfg = {
        "input": {"format": fmt, "path": str(path), **inp},
        "output": {"path": str(out)},
        "executor": {"tasks": 1, "workers": 1},
        "stages": stages if stages is not None else [{"stage": "length_filter", "min_words": 1}],
    }
    stats = run_config(parse_config(cfg), progress=False)
    assert stats["complete"] and stats["conserved"], stats
    for s in stats["stages"]:  # docs in = docs out + dropped by reason, for every stage
        assert s["docs_in"] == s["docs_out"] + sum(s["dropped"].values()), s
    return stats


def read_stage(stats: dict) -> dict:
    return stats["stages"][0]


def test_mixed_jsonl_corpus_is_counted_by_reason(corpus: Path, tmp_path: Path):
    stats = run(corpus / "jsonl", tmp_path / "o")
    r = read_stage(stats)
    assert r["dropped"] == {
        "bad_json": 2,
        "invalid_utf8": 1,
        "missing_text": 1,
        "null_text": 1,
        "text_not_string": 1,
        "empty_text": 2,
        "not_an_object": 1,
        "blank_line": 1,
    }
    assert r["docs_in"] == 20 + 10 + 1 and r["docs_out"] == 21  # 20 good + the escaped-NUL doc
    assert r["extra"]["nul_bytes_removed"] == 1
    docs = pq.read_table(tmp_path / "o" / "data").to_pylist()
    nul = next(d for d in docs if d["id"] == "z1")
    assert "\x00" not in nul["text"] and nul["source_record"] == 17
    assert {d["id"] for d in docs} == {f"good{i}" for i in range(20)} | {"z1"}
    assert stats["conserved"] and json.loads((tmp_path / "o" / "stats.json").read_text())["conserved"]


def test_skipped_records_are_logged_with_file_and_record(corpus: Path, tmp_path: Path):
    run(corpus / "jsonl", tmp_path / "o")
    log = (tmp_path / "o.work" / "logs" / "00_main" / "logs" / "task_00000.log").read_text()
    f = corpus / "jsonl" / "mixed.jsonl"
    assert f"skipping bad input in {f}, record 10: bad_json" in log
    assert f"skipping bad input in {f}, record 11: invalid_utf8" in log
    assert f"skipping bad input in {f}, record 12: missing_text (no field 'text'; fields are: id, body)" in log


EXPECTED_FAIL = {
    "malformed_json": "bad_json",
    "invalid_utf8": "invalid_utf8",
    "missing_text": "missing_text",
    "null_text": "null_text",
    "non_string_text": "text_not_string",
    "nul_raw_byte": "bad_json",
    "not_an_object": "not_an_object",
}


@pytest.mark.parametrize("case", sorted(EXPECTED_FAIL))
def test_on_error_fail_stops_with_one_line(case: str, corpus: Path, tmp_path: Path, capfd):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        json.dumps(
            {
                "input": {"format": "jsonl", "path": str(corpus / "single" / case)},
                "output": {"path": str(tmp_path / "o")},
                "on_error": "fail",
                "executor": {"tasks": 1, "workers": 1},
            }
        )
    )
    assert main(["run", str(cfg), "--no-progress"]) == 2
    err = capfd.readouterr().err
    last = err.strip().splitlines()[-1]
    # the one line every failed task gets, in a job of 1 task as of many (tests/pipeline/test_failures.py)
    assert last == last.strip() and last.startswith(
        "error: job 0 (main): 1 of 1 tasks failed in stage read: InputError: "
    )
    assert f"bad input in {corpus / 'single' / case / 'in.jsonl'}, record 3: {EXPECTED_FAIL[case]}" in last
    assert "it will fail again" in last and "on_error: skip" in last
    assert "Traceback" not in err and "unaccounted" not in err
    assert not (tmp_path / "o" / "data").is_dir() or not list((tmp_path / "o" / "data").glob("[0-9]*.parquet"))


def test_empty_documents_are_dropped_not_errors(corpus: Path, tmp_path: Path):
    """Empty and whitespace-only texts are content, not broken input: dropped as empty_text even with fail."""
    for case in ("empty", "whitespace_only"):
        cfg = {
            "input": {"format": "jsonl", "path": str(corpus / "single" / case)},
            "output": {"path": str(tmp_path / case)},
            "on_error": "fail",
            "executor": {"tasks": 1, "workers": 1},
        }
        stats = run_config(parse_config(cfg), progress=False)
        assert read_stage(stats)["dropped"] == {"empty_text": 1} and stats["output_docs"] == 5


@pytest.mark.slow
def test_50_mib_document(corpus: Path, tmp_path: Path):
    dropped = run(corpus / "big", tmp_path / "a")
    assert read_stage(dropped)["dropped"] == {"too_long": 1} and dropped["output_docs"] == 1
    kept = run(corpus / "big", tmp_path / "b", max_doc_chars=60_000_000)
    assert kept["output_docs"] == 2
    t = pq.read_table(tmp_path / "b" / "data", columns=["id", "text"]).to_pylist()
    assert len(next(r["text"] for r in t if r["id"] == "big")) == 50 * MiB


def test_document_of_a_million_short_lines(corpus: Path, tmp_path: Path):
    stats = run(corpus / "lines", tmp_path / "o")
    assert stats["output_docs"] == 1
    text = pq.read_table(tmp_path / "o" / "data", columns=["text"]).column("text")[0].as_py()
    assert text.count("\n") == 999_999


def test_truncated_gzip_keeps_what_was_readable(corpus: Path, tmp_path: Path):
    stats = run(corpus / "gzip", tmp_path / "o")
    r = read_stage(stats)
    assert r["dropped"] == {"truncated_file": 1}
    assert 0 < r["docs_out"] < 200 and r["docs_in"] == r["docs_out"] + 1


def test_corrupted_parquet_files(corpus: Path, tmp_path: Path):
    stats = run(corpus / "parquet", tmp_path / "o", fmt="parquet")
    r = read_stage(stats)
    assert r["dropped"] == {"corrupt_file": 2}
    assert r["docs_out"] == 200  # the good file is read in full


def test_truncated_warc(corpus: Path, tmp_path: Path):
    stats = run(corpus / "warc" / "clipped", tmp_path / "o", fmt="warc")
    assert read_stage(stats)["dropped"] == {"truncated_file": 1} and read_stage(stats)["docs_in"] == 1


def test_clueweb09_warc_with_quirks(corpus: Path, tmp_path: Path):
    """WARC/0.18, malformed WARC-Date, empty payload-type header, EUC-JP pages behind gzip content-encoding."""
    stats = run(corpus / "warc" / "clueweb09-quirk", tmp_path / "o", fmt="warc")
    r = read_stage(stats)
    assert r["docs_in"] == 29 and r["docs_out"] >= 25
    texts = pq.read_table(tmp_path / "o" / "data", columns=["text"]).column("text").to_pylist()
    assert sum(any("\u3040" <= ch <= "\u30ff" for ch in t) for t in texts) >= 20  # decoded kana, not mojibake


@pytest.mark.parametrize("case", ["bad_record", "glob_matches_nothing", "output_not_writable"])
def test_cli_errors_are_one_line_without_traceback(case: str, corpus: Path, tmp_path: Path):
    cfg = {
        "input": {"format": "jsonl", "path": str(corpus / "single" / "malformed_json")},
        "output": {"path": str(tmp_path / "o")},
        "executor": {"tasks": 1, "workers": 1},
    }
    if case == "bad_record":
        cfg["on_error"] = "fail"
        want = "error: job 0 (main): 1 of 1 tasks failed in stage read: InputError: bad input in "
    elif case == "glob_matches_nothing":
        cfg["input"]["glob"] = "*.parquet"
        want = "input.path: no files under"
    else:
        (tmp_path / "a-file").write_text("x")
        cfg["output"]["path"] = str(tmp_path / "a-file" / "out")
        # refused by the config checks now, before any folder is made
        want = f"output.path: '{tmp_path / 'a-file' / 'out'}' is inside '{tmp_path / 'a-file'}', which is a file"
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(cfg))
    r = subprocess.run(
        [sys.executable, "-m", "curate.pipeline.cli", "run", str(path), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and want in r.stderr, r.stderr


# ---------------------------------------------------------------------------- compressed and odd files


def read_file_stats(path: Path, fmt: str = "jsonl", on_error: str = "skip") -> tuple[list, dict]:
    """One input folder through the real reader; (documents, stats) with docs_in = docs_out + dropped checked."""
    from curate.pipeline.readers import make_reader

    cfg = parse_config({"input": {"format": fmt, "path": str(path)}, "output": {"path": "unused"}})
    reader = make_reader(cfg.input, on_error=on_error)
    docs = list(reader())
    stats = {k: v.total for k, v in reader.stats.stats.items()}
    dropped = {k.split("/", 1)[1]: v for k, v in stats.items() if k.startswith("dropped/")}
    assert stats["docs_in"] == stats["docs_out"] + sum(dropped.values()) == len(docs) + sum(dropped.values())
    return docs, {
        "in": stats["docs_in"],
        "out": stats["docs_out"],
        "dropped": dropped,
        "extra": {k: v for k, v in stats.items() if k == "utf8_bom_removed"},
    }


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory, real_docs) -> Path:
    import bz2
    import lzma

    import zstandard

    root = tmp_path_factory.mktemp("odd-files")
    lines = [orjson.dumps({"id": f"r{i}", "text": d["text"], "url": d["url"]}) for i, d in enumerate(real_docs[:200])]
    data = b"\n".join(lines) + b"\n"

    def put(name: str, content: bytes) -> None:
        (root / name).mkdir()
        (root / name / name.replace("_", ".")).write_bytes(content)

    z = zstandard.ZstdCompressor().compress(data)
    put("cut_jsonl_zst", z[: len(z) // 2])  # 200 real records, cut in the middle
    one = zstandard.ZstdCompressor().compress(lines[0] + b"\n")
    put("cut1_jsonl_zst", one[:-6])  # one record, the frame's end cut off
    zstd_frames = b"".join(zstandard.ZstdCompressor().compress(line + b"\n") for line in lines[:5])
    put("frames_jsonl_zst", zstd_frames)  # several frames (pzstd, cat a.zst b.zst)
    put("corrupt_jsonl_zst", z[:100] + bytes(200) + z[300:])
    x = lzma.compress(data)
    put("cut_jsonl_xz", x[: len(x) // 2])
    put("corrupt_jsonl_xz", x[:200] + bytes(300) + x[500:])
    b = bz2.compress(data)
    put("cut_jsonl_bz2", b[: len(b) // 2])
    put("notgzip_jsonl_gz", data)  # plain text named .gz
    put("bom_jsonl", b"\xef\xbb\xbf" + b"\n".join(lines[:5]) + b"\n")
    put("crlf_jsonl", b"\r\n".join(lines[:5]) + b"\r\n")
    put("nonewline_jsonl", b"\n".join(lines[:5]))
    put("empty_jsonl", b"")
    put("empty_jsonl_gz", gzip.compress(b""))
    put("empty_jsonl_zst", zstandard.ZstdCompressor().compress(b""))
    (root / "parquet").mkdir()
    pq.write_table(
        pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}),
        root / "parquet" / "zero_rows.parquet",
    )
    pq.ParquetWriter(
        root / "parquet" / "no_row_groups.parquet", pa.schema([("id", pa.string()), ("text", pa.string())])
    ).close()
    pq.write_table(
        pa.table({"id": ["p0", "p1"], "text": [d["text"] for d in real_docs[:2]]}), root / "parquet" / "two.parquet"
    )
    return root


@pytest.mark.parametrize("case", ["cut_jsonl_zst", "cut1_jsonl_zst", "cut_jsonl_xz", "cut_jsonl_bz2"])
def test_truncated_compressed_jsonl_is_one_truncated_file(case: str, odd_files: Path):
    """A cut .jsonl.zst used to read as complete: the one-record file as empty, the larger one with the
    cut line as bad_json and the rest silently gone. Now it is what a cut gzip is."""
    docs, s = read_file_stats(odd_files / case)
    assert s["dropped"] == {"truncated_file": 1}, s
    assert s["in"] == s["out"] + 1 and s["out"] < 200
    assert [d.id for d in docs] == [f"r{i}" for i in range(len(docs))]  # what was readable, in order
    if case == "cut_jsonl_zst":
        assert s["out"] > 0


def test_truncated_zstd_stops_the_run_under_fail(odd_files: Path, tmp_path: Path, capfd):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        json.dumps(
            {
                "input": {"format": "jsonl", "path": str(odd_files / "cut1_jsonl_zst")},
                "output": {"path": str(tmp_path / "o")},
                "on_error": "fail",
                "executor": {"tasks": 1, "workers": 1},
            }
        )
    )
    assert main(["run", str(cfg), "--no-progress"]) == 2
    last = capfd.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: job 0 (main): 1 of 1 tasks failed in stage read: InputError: ")
    assert (
        f"bad input in {odd_files / 'cut1_jsonl_zst' / 'cut1.jsonl.zst'}, record 0: "
        "truncated_file (EOFError: zstd: compressed file ended before the end of a frame"
    ) in last


@pytest.mark.parametrize("case", ["corrupt_jsonl_zst", "corrupt_jsonl_xz", "notgzip_jsonl_gz"])
def test_corrupt_compressed_jsonl_is_counted_not_a_crash(case: str, odd_files: Path):
    """A corrupt .zst or .xz raised zstandard's / lzma's own error (no OSError) and failed the task."""
    _, s = read_file_stats(odd_files / case)
    assert s["dropped"].get("corrupt_file") == 1 and set(s["dropped"]) <= {"corrupt_file", "bad_json"}, s
    with pytest.raises(InputError, match="corrupt_file"):
        read_file_stats(odd_files / case, on_error="fail")


def test_multi_frame_zstd_is_read_in_full(odd_files: Path):
    docs, s = read_file_stats(odd_files / "frames_jsonl_zst")
    assert [d.id for d in docs] == [f"r{i}" for i in range(5)] and not s["dropped"]


def test_utf8_bom_does_not_cost_the_first_record(odd_files: Path, real_docs):
    docs, s = read_file_stats(odd_files / "bom_jsonl")
    assert [d.id for d in docs] == [f"r{i}" for i in range(5)] and not s["dropped"]
    assert docs[0].text == real_docs[0]["text"] and s["extra"] == {"utf8_bom_removed": 1}


@pytest.mark.parametrize("case", ["crlf_jsonl", "nonewline_jsonl"])
def test_line_endings(case: str, odd_files: Path, real_docs):
    docs, s = read_file_stats(odd_files / case)
    assert [d.text for d in docs] == [d["text"] for d in real_docs[:5]] and not s["dropped"]


@pytest.mark.parametrize("case", ["empty_jsonl", "empty_jsonl_gz", "empty_jsonl_zst"])
def test_empty_files_are_empty_not_errors(case: str, odd_files: Path):
    docs, s = read_file_stats(odd_files / case, on_error="fail")
    assert docs == [] and s["in"] == 0


def test_parquet_without_rows(odd_files: Path):
    docs, s = read_file_stats(odd_files / "parquet", fmt="parquet", on_error="fail")
    assert [d.id for d in docs] == ["p0", "p1"] and s["in"] == 2 and not s["dropped"]
