"""Readers on real files of each format: jsonl(.gz/.zst), parquet (FineWeb schema), WARC/WET."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import zstandard

from curate.pipeline import parse_config
from curate.pipeline.readers import make_reader


def read_all(fmt: str, path: Path, **extra):
    cfg = parse_config({"input": {"format": fmt, "path": str(path), **extra}, "output": {"path": "x"}})
    reader = make_reader(cfg.input)
    docs = list(reader())
    return docs, {k: v.total for k, v in reader.stats.stats.items()}


def test_parquet_fineweb_schema(data_dir: Path):
    f = data_dir / "cc-parquet-dpk" / "gneissweb_classification_input_test_01.parquet"
    table = pq.read_table(f).to_pylist()
    docs, stats = read_all("parquet", f)
    assert [d.text for d in docs] == [r["text"] for r in table]
    assert [d.id for d in docs] == [r["id"] for r in table]
    assert docs[0].metadata["url"] == table[0]["url"] and docs[0].metadata["dump"] == "CC-MAIN-2023-14"
    assert [d.metadata["source_record"] for d in docs] == list(range(len(table)))
    assert stats["docs_in"] == stats["docs_out"] == len(table)


def test_parquet_other_text_key(data_dir: Path):
    f = data_dir / "cc-parquet-dpk" / "filter_input_test1.parquet"
    docs, _ = read_all("parquet", f, text_key="contents", id_key="document")
    assert len(docs) == 100 and all(d.text for d in docs)


def test_jsonl_gz_and_zst(tmp_path: Path, data_dir: Path):
    src = data_dir / "web-fixtures-small" / "redpajama-cc-2023-06-refined.jsonl"
    lines = src.read_bytes().splitlines()
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines) + b"\n"))
    docs, stats = read_all("jsonl", tmp_path / "a.jsonl.zst")
    assert [d.text for d in docs] == [orjson.loads(l)["text"] for l in lines]
    gz_docs, _ = read_all("jsonl", data_dir / "web-fixtures-small", glob="c4-sample.*.json.gz")
    assert len(gz_docs) > 0 and all(d.metadata["source_file"].endswith(".json.gz") for d in gz_docs)


def test_warc_html_extraction(data_dir: Path):
    docs, stats = read_all("warc", data_dir / "warc" / "whirlwind.warc.gz")
    assert len(docs) == 1
    d = docs[0]
    assert d.metadata["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert "Escopete" in d.text and "<html" not in d.text.lower() and "<div" not in d.text.lower()


def test_wet_conversion_records(data_dir: Path):
    docs, _ = read_all("warc", data_dir / "warc" / "whirlwind.warc.wet.gz")
    assert len(docs) == 1 and "Escopete" in docs[0].text


def test_real_cc_warc_excerpt_accounts_every_response(data_dir: Path):
    docs, stats = read_all("warc", data_dir / "warc" / "CC-MAIN-20200808165417-20200808195417-00395.excerpt.warc.gz")
    dropped = sum(v for k, v in stats.items() if k.startswith("dropped/"))
    assert stats["docs_in"] == 16  # 16 response records in the excerpt
    assert stats["docs_in"] == len(docs) + dropped
    assert len(docs) > 5
