"""What the readers take from an input folder (their own extensions unless `input.glob` says otherwise), and
metadata column types fixed before the run from all of the input (or declared), on real files and the CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from curate.pipeline.cli import main


def jsonl(path: Path, records: list[dict]) -> None:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def docs(prefix: str, n: int, **fields) -> list[dict]:
    return [{"id": f"{prefix}{i}", "text": f"{prefix} document {i} with words", **fields} for i in range(n)]


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """What a user's data folder holds: shards, a README, another format's file, a 0-byte shard."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    jsonl(src / "a.jsonl", docs("a", 3))
    jsonl(src / "sub" / "b.json.gz", docs("b", 2))
    jsonl(src / "c.ndjson", docs("c", 1))
    (src / "empty.jsonl").write_bytes(b"")
    (src / "README.md").write_text("# my corpus\n\nNot JSON at all.\n")
    pq.write_table(pa.table({"text": ["a parquet row"], "id": ["p0"]}), src / "rows.parquet")
    return src


def write_config(tmp_path: Path, input_: dict, output: dict | None = None, name: str = "c.yaml") -> str:
    c = {"input": input_, "output": {"path": str(tmp_path / "out"), **(output or {})}}
    (tmp_path / name).write_text(yaml.safe_dump(c))
    return str(tmp_path / name)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def stats(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / "stats.json").read_text())


@pytest.mark.slow  # a 2-task run (~7 s on a loaded 2-core machine)
def test_jsonl_reads_only_json_lines_files_and_says_what_it_skipped(tmp_path: Path, mixed_folder: Path, capsys):
    path = write_config(tmp_path, {"format": "jsonl", "path": str(mixed_folder)})
    rc, _, err = run_cli(["validate", path], capsys)
    assert rc == 0 and "2 file(s) under" in err and "not .jsonl/.json/.ndjson" in err and "input.glob" in err
    rc, out, _ = run_cli(["plan", path], capsys)
    assert rc == 0 and "input: jsonl, 4 file(s)" in out and "2 file(s) under" in out
    assert "README.md" not in out.split("jobs")[0] and "rows.parquet" not in out.split("jobs")[0]
    rc, _, err = run_cli(["run", path, "--no-progress", "--tasks", "2"], capsys)
    assert rc == 0, err
    read = stats(tmp_path)["stages"][0]
    assert read["docs_in"] == read["docs_out"] == 6 and not read.get("dropped")
    ids = sorted(pq.read_table(tmp_path / "out" / "data").column("id").to_pylist())
    assert ids == ["a0", "a1", "a2", "b0", "b1", "c0"]


def test_a_glob_chooses_the_files_itself(tmp_path: Path, mixed_folder: Path, capsys):
    path = write_config(tmp_path, {"format": "jsonl", "path": str(mixed_folder), "glob": "*.jsonl"})
    rc, out, _ = run_cli(["plan", path, "--json"], capsys)
    assert rc == 0
    d = json.loads(out)
    assert sorted(Path(f).name for f in d["input"]["files"]) == ["a.jsonl", "empty.jsonl"] and not d["notes"]


def test_parquet_reads_only_parquet_files(tmp_path: Path, mixed_folder: Path, capsys):
    path = write_config(tmp_path, {"format": "parquet", "path": str(mixed_folder)})
    rc, _, err = run_cli(["run", path, "--no-progress"], capsys)
    assert rc == 0, err
    assert "5 file(s) under" in err and "not .parquet" in err  # said at the start of the run
    assert pq.read_table(tmp_path / "out" / "data").column("id").to_pylist() == ["p0"]
    assert stats(tmp_path)["stages"][0]["docs_in"] == 1


def test_a_folder_without_files_of_the_format_is_refused(tmp_path: Path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "README.md").write_text("hello\n")
    path = write_config(tmp_path, {"format": "jsonl", "path": str(src)})
    rc, _, err = run_cli(["validate", path], capsys)
    assert rc == 2 and "input.path: no files under" in err and "1 skipped for their extension" in err


# ---------------------------------------------------------------------------- column types


def test_fields_only_later_files_hold_get_their_real_type(tmp_path: Path, capsys):
    """CCNet documents come after 1,500 others in a mix: `perplexity` and `line_ids` get their types from
    them, `plan` prints the types, and no false "not a field of the input" warning appears."""
    src = tmp_path / "in"
    src.mkdir()
    jsonl(src / "0_dolma.jsonl", docs("d", 1500, url="http://d"))
    jsonl(src / "1_ccnet.jsonl.gz", docs("c", 20, url="http://c", perplexity=101.5, line_ids=[0, 3]))
    path = write_config(
        tmp_path, {"format": "jsonl", "path": str(src)}, {"metadata_columns": ["url", "perplexity", "line_ids"]}
    )
    rc, out, _ = run_cli(["plan", path], capsys)
    assert rc == 0
    assert "perplexity (double)" in out and "line_ids (list<item: int64>)" in out and "url (string)" in out
    assert "not a field" not in out
    rc, _, err = run_cli(["run", path, "--no-progress"], capsys)
    assert rc == 0 and "not a field" not in err
    table = pq.read_table(tmp_path / "out" / "data")
    assert table.schema.field("perplexity").type == pa.float64()
    assert table.schema.field("line_ids").type == pa.list_(pa.int64())
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows["c3"]["perplexity"] == 101.5 and rows["c3"]["line_ids"] == [0, 3] and rows["d0"]["perplexity"] is None
    assert not stats(tmp_path).get("warnings")


def test_a_field_of_no_file_is_said_before_the_run(tmp_path: Path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    jsonl(src / "a.jsonl", docs("a", 3, url="u"))
    path = write_config(tmp_path, {"format": "jsonl", "path": str(src)}, {"metadata_columns": ["urll"]})
    rc, out, _ = run_cli(["plan", path], capsys)
    assert rc == 0 and "'urll' is not a field of any input file" in out
    rc, _, err = run_cli(["run", path, "--no-progress"], capsys)
    assert rc == 0 and err.index("'urll' is not a field of any input file") < err.index("docs in")


def test_parquet_types_come_from_every_file_schema(tmp_path: Path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.table({"text": ["one doc"], "id": ["x0"]}), src / "0.parquet")
    pq.write_table(pa.table({"text": ["two doc"], "id": ["x1"], "score": pa.array([3], pa.int32())}), src / "1.parquet")
    pq.write_table(
        pa.table({"text": ["three doc"], "id": ["x2"], "score": pa.array([2**40], pa.int64())}), src / "2.parquet"
    )
    path = write_config(tmp_path, {"format": "parquet", "path": str(src)}, {"metadata_columns": ["score"]})
    rc, out, _ = run_cli(["plan", path, "--json"], capsys)
    d = json.loads(out)
    assert rc == 0 and d["column_types"]["score"] == "int64"
    assert any("int32 in 1.parquet, int64 in 2.parquet: widened to int64" in n for n in d["notes"])
    assert run_cli(["run", path, "--no-progress"], capsys)[0] == 0
    rows = {r["id"]: r["score"] for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    assert rows == {"x0": None, "x1": 3, "x2": 2**40}


def test_mixed_types_are_said_and_declared_types_count_what_does_not_fit(tmp_path: Path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    jsonl(src / "a.jsonl", docs("a", 2, score=0.5, url="http://a"))
    jsonl(src / "b.jsonl", docs("b", 2, score="n/a", url="http://b"))
    inferred = write_config(tmp_path, {"format": "jsonl", "path": str(src)}, {"metadata_columns": ["score"]})
    rc, out, _ = run_cli(["plan", inferred], capsys)
    assert rc == 0 and "'score': double in a.jsonl, string in b.jsonl: no one type holds them" in out
    declared = write_config(
        tmp_path,
        {"format": "jsonl", "path": str(src)},
        {"metadata_columns": {"score": "float64", "url": "string"}},
        name="declared.yaml",
    )
    rc, out, _ = run_cli(["plan", declared], capsys)
    assert rc == 0 and "score (double)" in out and "no one type" not in out
    rc, _, err = run_cli(["run", declared, "--no-progress"], capsys)
    assert rc == 0, err
    rows = {r["id"]: r["score"] for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    assert rows == {"a0": 0.5, "a1": 0.5, "b0": None, "b1": None}
    writer = [s for s in stats(tmp_path)["stages"] if s["label"] == "write"][0]
    assert writer["extra"]["unfit_value/score"] == 2  # counted, and said
    assert stats(tmp_path)["warnings"] == ["write: 2 value(s) of column 'score' did not fit its type (written as null)"]


def test_a_declared_type_must_be_an_arrow_type(tmp_path: Path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    jsonl(src / "a.jsonl", docs("a", 1))
    path = write_config(tmp_path, {"format": "jsonl", "path": str(src)}, {"metadata_columns": {"score": "flaot64"}})
    rc, _, err = run_cli(["validate", path], capsys)
    assert rc == 2 and "output.metadata_columns: score: unknown type 'flaot64'" in err and "float64" in err


def test_a_number_past_the_sample_in_a_string_column_is_counted(tmp_path: Path, capsys):
    """Each file's first records decide the type; a later value of another kind is written as JSON text and
    counted, with a warning naming the column and the fix (never a silent string)."""
    src = tmp_path / "in"
    src.mkdir()
    records = docs("a", 300, url="http://a")
    records[250]["url"] = 12345  # past the 100 records sampled per file
    jsonl(src / "a.jsonl", records)
    path = write_config(tmp_path, {"format": "jsonl", "path": str(src)}, {"metadata_columns": ["url"]})
    rc, _, err = run_cli(["run", path, "--no-progress"], capsys)
    assert rc == 0, err
    rows = {r["id"]: r["url"] for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    assert rows["a250"] == "12345" and rows["a0"] == "http://a"
    writer = [s for s in stats(tmp_path)["stages"] if s["label"] == "write"][0]
    assert writer["extra"]["json_text/url"] == 1
    assert any("1 value(s) of string column 'url' were not strings" in w for w in stats(tmp_path)["warnings"])


def test_declared_types_hold_for_a_remote_input(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch):
    """A remote input is not opened before the run: undeclared columns are strings, declared ones keep their type."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = write_config(
        tmp_path,
        {"format": "parquet", "path": "hf://datasets/org/name/data"},
        {"metadata_columns": {"score": "float64", "url": None}},
    )
    rc, out, _ = run_cli(["plan", path, "--no-checks", "--json"], capsys)
    assert rc == 0
    types = json.loads(out)["column_types"]
    assert types["score"] == "double" and types["url"] == "string"
