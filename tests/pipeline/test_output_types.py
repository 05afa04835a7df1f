"""Output column types: metadata columns keep the input's Arrow type, values that do not fit are
converted when lossless or written as null and counted, Parquet key-value metadata, and the
`.partial` file of a writer whose close fails is removed.

Real input: the DPK FineWeb-style Parquet (timestamp[ns], a struct of nested lists, int64, bool,
double) and the Dolma CC jsonl (a nested `metadata` object with ints, floats, lists).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.pipeline import parse_config
from curate.pipeline.readers import infer_type, make_reader, metadata_column_types
from curate.pipeline.writers import UNFIT, HandoffReader, HandoffWriter, OutputWriter, coercer, output_schema

DPK = "cc-parquet-dpk/filter_input_test1.parquet"
DOLMA = "dolma-cc-2019"
PARQUET_COLUMNS = ["date_acquired", "extra", "int_id_column", "docq_contain_bad_word", "ft_score", "title", "cluster"]


def input_cfg(fmt: str, path: Path, names: list[str], **extra):
    return parse_config(
        {"input": {"format": fmt, "path": str(path), **extra}, "output": {"path": "x", "metadata_columns": names}}
    ).input


def write(folder: Path, schema: pa.Schema, docs, **kw) -> OutputWriter:
    """Documents through a real OutputWriter (rank 0), as the last step of a task does."""
    w = OutputWriter(str(folder), schema, **kw)
    for _ in w(iter(docs)):
        pass
    return w


def writer_stats(w: OutputWriter) -> dict:
    return {k: v.total for k, v in w.stats.stats.items()}


def test_parquet_metadata_columns_keep_their_types(data_dir: Path, tmp_path: Path):
    src = data_dir / DPK
    names = PARQUET_COLUMNS + ["not_in_input"]
    cfg = input_cfg("parquet", src, names, text_key="contents", id_key="document")
    types = metadata_column_types(cfg, names)
    want = pq.read_schema(src)
    assert {n: types[n] for n in PARQUET_COLUMNS} == {n: want.field(n).type for n in PARQUET_COLUMNS}
    assert types["not_in_input"] is None  # never seen: the plan warns, the column is null strings

    w = write(tmp_path / "data", output_schema([], types), make_reader(cfg)())
    out = pq.read_table(tmp_path / "data" / "00000.parquet")
    table = pq.read_table(src)
    for n in PARQUET_COLUMNS:
        assert out.schema.field(n).type == want.field(n).type, n
        assert out.column(n).to_pylist() == table.column(n).to_pylist(), n
    assert out.schema.field("not_in_input").type == pa.string() and out.column("not_in_input").null_count == 100
    assert not any(k.startswith("unfit_value/") for k in writer_stats(w))
    # the timestamp is a timestamp, not the string '"2023-07-05T05:00:00"' with its JSON quotes
    assert out.column("date_acquired")[0].as_py() == table.column("date_acquired")[0].as_py()


def test_timestamp_in_a_string_column_has_no_quotes(data_dir: Path, tmp_path: Path):
    """Names without types (what the plan passes until it resolves types) make string columns: a
    timestamp is written in ISO form, not as the JSON string '"2023-07-05T05:00:00"'."""
    src = data_dir / DPK
    cfg = input_cfg("parquet", src, ["date_acquired", "int_id_column"], text_key="contents", id_key="document")
    write(tmp_path / "data", output_schema([], ["date_acquired", "int_id_column"]), make_reader(cfg)())
    out = pq.read_table(tmp_path / "data")
    want = pq.read_table(src)
    assert out.schema.field("date_acquired").type == pa.string()
    assert out.column("date_acquired").to_pylist() == [t.isoformat() for t in want.column("date_acquired").to_pylist()]
    assert out.column("int_id_column").to_pylist() == [str(n) for n in want.column("int_id_column").to_pylist()]


def test_jsonl_metadata_types_are_inferred_from_the_first_records(data_dir: Path, tmp_path: Path):
    folder = data_dir / DOLMA
    names = ["length", "language_score", "line_ids", "title", "date_download", "added", "source", "nowhere"]
    cfg = input_cfg("jsonl", folder, names)
    types = metadata_column_types(cfg, names)
    assert types == {
        "length": pa.int64(),
        "language_score": pa.float64(),
        "line_ids": pa.list_(pa.int64()),
        "title": pa.string(),
        "date_download": pa.string(),  # JSON has no timestamps
        "added": pa.string(),
        "source": pa.string(),
        "nowhere": None,
    }
    docs = list(make_reader(cfg)())
    w = write(tmp_path / "data", output_schema([], types), docs)
    out = pq.read_table(tmp_path / "data" / "00000.parquet")
    assert out.schema.field("line_ids").type == pa.list_(pa.int64())
    rows = {r["id"]: r for r in out.to_pylist()}
    for d in docs:
        r = rows[d.id]
        assert r["length"] == d.metadata["length"] and r["line_ids"] == d.metadata["line_ids"]
        assert r["date_download"] == d.metadata["date_download"]  # the string as it was, no quotes added
    assert not any(k.startswith("unfit_value/") for k in writer_stats(w))


def test_jsonl_inference_reads_only_the_first_records_and_falls_back_to_string(data_dir: Path, tmp_path: Path):
    lines = gzip.open(data_dir / DOLMA / "cc_en_head-0091.jsonl.gz").read().splitlines()
    recs = [orjson.loads(line) for line in lines]
    # `length` is a string in one record of the sample, `nlines` only after the sampled records
    recs[3]["metadata"]["length"] = "about 500"
    for r in recs[5:]:
        r["metadata"]["nlines"] = "many"
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in recs) + b"\n")
    cfg = input_cfg("jsonl", tmp_path / "in.jsonl", ["length", "nlines"])
    assert metadata_column_types(cfg, ["length", "nlines"], sample_records=5) == {
        "length": pa.string(),
        "nlines": pa.int64(),
    }
    types = metadata_column_types(cfg, ["length", "nlines"], sample_records=5)
    w = write(tmp_path / "data", output_schema([], types), make_reader(cfg)())
    out = pq.read_table(tmp_path / "data" / "00000.parquet").to_pylist()
    # a string column keeps strings as they are and writes the other values as JSON
    assert out[3]["length"] == "about 500" and out[0]["length"] == str(recs[0]["metadata"]["length"])
    # values past the sample that do not fit are null and counted, never a failed task
    assert [r["nlines"] for r in out[:5]] == [r["metadata"]["nlines"] for r in recs[:5]]
    assert len(out) == 10 and all(r["nlines"] is None for r in out[5:])
    assert writer_stats(w)["unfit_value/nlines"] == 5


def test_parquet_nested_metadata_struct(data_dir: Path, tmp_path: Path):
    """Dolma records as Parquet: fields of the `metadata` struct are columns too, as the reader flattens them."""
    recs = [orjson.loads(line) for line in gzip.open(data_dir / DOLMA / "cc_en_head-0091.jsonl.gz")]
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "dolma.parquet")
    names = ["length", "line_ids", "language_score", "source"]
    cfg = input_cfg("parquet", tmp_path / "dolma.parquet", names)
    types = metadata_column_types(cfg, names)
    assert types == {
        "length": pa.int64(),
        "line_ids": pa.list_(pa.int64()),
        "language_score": pa.float64(),
        "source": pa.string(),
    }
    write(tmp_path / "data", output_schema([], types), make_reader(cfg)())
    out = pq.read_table(tmp_path / "data").to_pylist()
    assert [r["line_ids"] for r in out] == [r["metadata"]["line_ids"] for r in recs]


def test_warc_fields_are_strings(data_dir: Path):
    cfg = input_cfg("warc", data_dir / "warc" / "whirlwind.warc.gz", ["url", "date", "x"])
    assert metadata_column_types(cfg, ["url", "date", "x"]) == {"url": pa.string(), "date": pa.string(), "x": None}


def test_lossless_coercion_and_counted_nulls(tmp_path: Path, sample_dir: Path):
    texts = [json.loads(line)["text"] for line in gzip.open(sample_dir / "c4-en-1k.jsonl.gz")][:8]
    schema = output_schema(
        [],
        {
            "n": pa.int32(),
            "ts": pa.timestamp("us"),
            "flag": pa.bool_(),
            "tags": pa.list_(pa.string()),
            "s": pa.struct([("a", pa.int64())]),
        },
    )
    values = [  # (n, ts, flag, tags, s), each row one case
        (3.0, "2019-04-25 12:57:54", 1, ("a", "b"), {"a": 1}),  # all lossless
        (2.5, "yesterday", 2, "a,b", {"a": 1, "b": 2}),  # none fits
        (2**40, 1556196000, "yes", [1], {"a": "x"}),  # only [1] (as ["1"])
        ("42", dt.date(2020, 1, 2), True, [], {}),  # lossless again
        (True, dt.datetime(2020, 1, 2, 3, 4, 5), False, None, None),
    ]
    docs = [
        Document(text=t, id=f"d{i}", metadata=dict(zip(("n", "ts", "flag", "tags", "s"), v)))
        for i, (t, v) in enumerate(zip(texts, values))
    ]
    w = write(tmp_path / "data", schema, docs)
    rows = pq.read_table(tmp_path / "data" / "00000.parquet").to_pylist()
    assert [r["n"] for r in rows] == [3, None, None, 42, None]
    assert [r["ts"] for r in rows] == [
        dt.datetime(2019, 4, 25, 12, 57, 54),
        None,
        None,
        dt.datetime(2020, 1, 2),
        dt.datetime(2020, 1, 2, 3, 4, 5),
    ]
    assert [r["flag"] for r in rows] == [True, None, None, True, False]
    # a string column (or list item) writes a non-string value as JSON, as for a column of mixed types
    assert [r["tags"] for r in rows] == [["a", "b"], None, ["1"], [], None]
    assert [r["s"] for r in rows] == [{"a": 1}, None, None, {"a": None}, None]
    s = writer_stats(w)
    assert {k: v for k, v in s.items() if k.startswith("unfit_value/")} == {
        "unfit_value/n": 3,
        "unfit_value/ts": 2,
        "unfit_value/flag": 2,
        "unfit_value/tags": 1,
        "unfit_value/s": 2,
    }
    assert s["docs_in"] == s["docs_out"] == 5  # a value written as null never costs the document


def test_a_value_past_the_coercers_is_nulled_not_a_failed_task(tmp_path: Path):
    """Safety net: should a coercer let through a value pyarrow refuses, that value is written as null
    (counted) and the rest of the row group is written. Injected by replacing the coercers with identity."""
    schema = output_schema([], {"n": pa.int64(), "s": pa.string()})
    w = OutputWriter(str(tmp_path / "data"), schema, rows_per_group=2)
    w.__dict__["_coercer_list"] = [(f.name, lambda v: v) for f in schema if f.name not in ("id", "text")]
    docs = [
        Document(text="a b", id=str(i), metadata={"n": n, "s": s})
        for i, (n, s) in enumerate([(1, "a"), ("x", 5), (3, "c")])
    ]
    for _ in w(iter(docs)):
        pass
    out = pq.read_table(tmp_path / "data")
    assert out.column("n").to_pylist() == [1, None, 3] and out.column("s").to_pylist() == ["a", None, "c"]
    assert {k: v for k, v in writer_stats(w).items() if k.startswith("unfit_value/")} == {
        "unfit_value/n": 1,
        "unfit_value/s": 1,
    }


def test_decimal_column(tmp_path: Path):
    import decimal

    schema = output_schema([], {"d": pa.decimal128(5, 2)})
    values = [decimal.Decimal("1.25"), "1.25", 3, 1.5, "1.234", "abc"]
    w = write(
        tmp_path / "data", schema, [Document(text="a b", id=str(i), metadata={"d": v}) for i, v in enumerate(values)]
    )
    D = decimal.Decimal
    assert pq.read_table(tmp_path / "data").column("d").to_pylist() == [
        D("1.25"),
        D("1.25"),
        D("3.00"),
        None,
        None,
        None,
    ]
    assert writer_stats(w)["unfit_value/d"] == 3


def test_binary_and_decimal_survive_the_handoff(tmp_path: Path, sample_dir: Path):
    """bytes crossed the JSON handoff as the text of their repr ("b'...'") and were written so."""
    import decimal

    texts = [json.loads(line)["text"] for line in gzip.open(sample_dir / "c4-en-1k.jsonl.gz")][:20]
    table = pa.table(
        {
            "id": [str(i) for i in range(20)],
            "text": texts,
            "raw": pa.array([t.encode("utf-8")[:50] + bytes([0, 255]) for t in texts], pa.binary()),
            "price": pa.array([decimal.Decimal(f"{i}.{i:02d}") for i in range(20)], pa.decimal128(6, 2)),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    cfg = input_cfg("parquet", tmp_path / "in.parquet", ["raw", "price"])
    for _ in HandoffWriter(str(tmp_path / "work"))(make_reader(cfg)()):
        pass
    docs = list(HandoffReader(str(tmp_path / "work"))())
    w = write(tmp_path / "data", output_schema([], metadata_column_types(cfg, ["raw", "price"])), docs)
    out = pq.read_table(tmp_path / "data")
    assert out.column("raw").to_pylist() == table.column("raw").to_pylist()
    assert out.column("price").to_pylist() == table.column("price").to_pylist()
    assert not any(k.startswith("unfit_value/") for k in writer_stats(w))


def test_timestamp_survives_the_handoff_between_jobs(data_dir: Path, tmp_path: Path):
    """A two-job plan hands metadata over as JSON: the timestamp arrives as a string and is parsed back."""
    src = data_dir / DPK
    cfg = input_cfg("parquet", src, ["date_acquired", "extra"], text_key="contents", id_key="document")
    for _ in HandoffWriter(str(tmp_path / "work"))(make_reader(cfg)()):
        pass
    docs = list(HandoffReader(str(tmp_path / "work"))())
    assert isinstance(docs[0].metadata["date_acquired"], str)
    w = write(tmp_path / "data", output_schema([], metadata_column_types(cfg, ["date_acquired", "extra"])), docs)
    out = pq.read_table(tmp_path / "data")
    table = pq.read_table(src)
    assert out.column("date_acquired").to_pylist() == table.column("date_acquired").to_pylist()
    assert out.column("extra").to_pylist() == table.column("extra").to_pylist()
    assert not any(k.startswith("unfit_value/") for k in writer_stats(w))


def test_file_metadata_in_every_file(tmp_path: Path, sample_dir: Path):
    texts = [json.loads(line)["text"] for line in gzip.open(sample_dir / "c4-en-1k.jsonl.gz")][:4]
    meta = {"curate_version": "9.9.9", "config_fingerprint": "0123abcd"}
    for rank in (0, 1):
        w = OutputWriter(str(tmp_path / "data"), output_schema([]), file_metadata=meta)
        for _ in w(iter(Document(text=t, id=f"{rank}-{i}") for i, t in enumerate(texts)), rank=rank):
            pass
    files = sorted((tmp_path / "data").iterdir())
    assert [f.name for f in files] == ["00000.parquet", "00001.parquet"]  # atomic rename kept
    for f in files:
        kv = pq.ParquetFile(f).schema_arrow.metadata
        assert {k.decode(): v.decode() for k, v in kv.items() if not k.startswith(b"ARROW:")} == meta
    with pytest.raises(TypeError, match="strings"):
        OutputWriter(str(tmp_path / "x"), output_schema([]), file_metadata={"n": 1})  # type: ignore[dict-item]


@pytest.mark.parametrize("where", ["writer_close", "last_batch"])
def test_failed_close_removes_the_partial_file(where: str, tmp_path: Path, sample_dir: Path, monkeypatch):
    texts = [json.loads(line)["text"] for line in gzip.open(sample_dir / "c4-en-1k.jsonl.gz")][:30]
    # writer_close: two row groups are written before the footer fails; last_batch: the only row group
    # is written in close()
    w = OutputWriter(str(tmp_path / "data"), output_schema([]), rows_per_group=12 if where == "writer_close" else 100)
    if where == "writer_close":  # the Parquet footer cannot be written (disk full, object store error)
        real_close = pq.ParquetWriter.close
        calls = []

        def boom(self):  # noqa: ANN001
            calls.append(1)
            if len(calls) == 1:  # once: pyarrow's __del__ closes again later
                raise OSError("injected: footer write failed")
            real_close(self)

        monkeypatch.setattr(pq.ParquetWriter, "close", boom)
    else:  # the last row group fails (a bug past every coercer)

        def boom(self, filename):  # noqa: ANN001
            raise RuntimeError("injected: last row group failed")

        monkeypatch.setattr(OutputWriter, "_write_batch", boom)
    with pytest.raises((OSError, RuntimeError), match="injected"):
        for _ in w(iter(Document(text=t, id=str(i)) for i, t in enumerate(texts))):
            pass
    monkeypatch.undo()
    assert list((tmp_path / "data").iterdir()) == []  # neither the .partial nor a published file


def test_categories_are_a_list_column_and_probabilities_in_range(tmp_path: Path, sample_dir: Path, repo_root: Path):
    models = repo_root / "filters" / "assets" / "models"
    cfg = parse_config(
        {
            "input": {"format": "jsonl", "path": str(sample_dir), "glob": "*.jsonl.gz", "limit": 150},
            "output": {"path": str(tmp_path / "o")},
            "executor": {"tasks": 1, "workers": 1},
            "stages": [
                {
                    "stage": "gneissweb_ensemble",
                    "annotate_only": True,
                    "quality_models": [
                        {"name": "dclm", "path": str(models / "quality_dclm.ftz"), "preprocess": "dclm"},
                        {"name": "cosmo", "path": str(models / "quality_cosmo.ftz")},
                    ],
                    "category_models": [
                        {"name": c, "path": str(models / f"category_{c}.ftz")}
                        for c in ("medical", "education", "technology", "science")
                    ],
                    "tokenizer": str(repo_root / "dedup" / "assets" / "gpt2" / "tokenizer.json"),
                }
            ],
        }
    )
    from curate.pipeline import run_config

    stats = run_config(cfg, progress=False)
    assert stats["complete"] and stats["conserved"]
    t = pq.read_table(tmp_path / "o" / "data")
    assert t.schema.field("categories").type == pa.list_(pa.string())
    rows = t.to_pylist()
    assert rows and all(
        r["categories"] is None
        or (r["categories"] and set(r["categories"]) <= {"medical", "education", "technology", "science"})
        for r in rows
    )
    assert all(r["is_category"] == (r["categories"] is not None) for r in rows)
    assert any(r["categories"] is None for r in rows) and any(r["categories"] for r in rows)
    for c in ("ft_dclm", "ft_cosmo", "cat_medical", "cat_education", "cat_technology", "cat_science"):
        assert all(0.0 <= r[c] <= 1.0 for r in rows), c


# ---------------------------------------------------------------------------- coercion properties


def _same(a, b) -> bool:
    """Equal, and a bool stays a bool (Python's False == 0.0 would hide pyarrow's silent conversion)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _fits(v, typ: pa.DataType) -> bool:
    """Arrow stores `v` in a `typ` column and reads back the same value."""
    try:
        return _same(pa.array([v], type=typ).to_pylist()[0], v)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return False


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from("abc"), c, max_size=3),
    max_leaves=8,
)
_types = st.sampled_from(
    [
        pa.int8(),
        pa.int64(),
        pa.uint32(),
        pa.float64(),
        pa.bool_(),
        pa.string(),
        pa.list_(pa.int64()),
        pa.struct([("a", pa.int64()), ("b", pa.string())]),
        pa.list_(pa.list_(pa.float64())),
    ]
)


@settings(max_examples=400, deadline=None)
@given(_json, _types)
def test_coercion_never_loses_silently(v, typ: pa.DataType):
    """Oracle: a coerced value is one Arrow stores and reads back unchanged; a value already of the type
    (pyarrow round-trips it exactly) is kept as it is; nothing raises."""
    if v is None:
        return
    out = coercer(typ)(v)
    if out is UNFIT:
        assert not _fits(v, typ), (v, typ)  # refused only when Arrow would change the value
        return
    assert _fits(out, typ), (v, typ, out)
    if _fits(v, typ) and not pa.types.is_string(typ):
        assert out == v
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        assert out == v or (isinstance(v, str) and float(v) == out)


def test_infer_type_falls_back_to_string():
    assert infer_type([1, 2.5]) == pa.float64()
    assert infer_type([1, "a"]) == pa.string() and infer_type([True, 1]) == pa.string()
    assert infer_type([2**64]) == pa.string() and infer_type([]) == pa.string()
    # pyarrow would infer list<double> and turn false into 0.0
    assert infer_type([[0.5, False]]) == pa.string() and infer_type([0.5, True]) == pa.string()
    assert infer_type([[]]) == pa.list_(pa.string()) and infer_type([{}]) == pa.string()
    assert infer_type([{"a": 1}, {"b": "x"}]) == pa.struct([("a", pa.int64()), ("b", pa.string())])


def test_run_writes_metadata_columns_with_input_types(data_dir: Path, tmp_path: Path):
    from curate.pipeline import run_config

    src = data_dir / DPK
    cfg = parse_config(
        {
            "input": {"format": "parquet", "path": str(src), "text_key": "contents", "id_key": "document"},
            "output": {"path": str(tmp_path / "o"), "metadata_columns": PARQUET_COLUMNS},
            "executor": {"tasks": 1, "workers": 1},
            "stages": [],
        }
    )
    assert run_config(cfg, progress=False)["complete"]
    out = pq.read_schema(next((tmp_path / "o" / "data").glob("*.parquet")))
    want = pq.read_schema(src)
    assert {n: out.field(n).type for n in PARQUET_COLUMNS} == {n: want.field(n).type for n in PARQUET_COLUMNS}


_field_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=4),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from("ab"), c, max_size=2),
    max_leaves=5,
)


def _converted(v, typ: pa.DataType):
    """pyarrow's conversion of a JSON value to `typ`, with JSON text wherever a string is expected and
    the value is none (a column, or a nested field, whose values did not agree on a type)."""
    if v is None:
        return None
    if pa.types.is_string(typ):
        return v if isinstance(v, str) else orjson.dumps(v).decode()
    if pa.types.is_list(typ):
        return [_converted(x, typ.value_type) for x in v]
    if pa.types.is_struct(typ):
        return {f.name: _converted(v.get(f.name), f.type) for f in typ}
    return pa.array([v], type=typ).to_pylist()[0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={"x": _field_values, "y": _field_values}), min_size=1, max_size=8))
def test_jsonl_round_trip_against_pyarrow(tmp_path_factory, records):
    """Oracle: when every record is in the type sample, each output column equals pyarrow's own conversion of
    the input values to the inferred type (JSON text for the non-string values of a string column), and
    nothing is counted unfit."""
    tmp = tmp_path_factory.mktemp("rt")
    lines = [orjson.dumps({"text": f"document {i}", **r}) for i, r in enumerate(records)]
    (tmp / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    cfg = input_cfg("jsonl", tmp / "in.jsonl", ["x", "y"])
    types = metadata_column_types(cfg, ["x", "y"])
    w = write(tmp / "data", output_schema([], types), make_reader(cfg)())
    out = pq.read_table(tmp / "data")
    for col in ("x", "y"):
        values = [orjson.loads(line).get(col) for line in lines]  # what JSON gives back
        if types[col] is None:
            assert all(v is None for v in values) and not any(col in r for r in records)
            continue
        want = [_converted(v, types[col]) for v in values]
        assert out.column(col).to_pylist() == want, (col, types[col], values)
    assert not any(k.startswith("unfit_value/") for k in writer_stats(w))
