"""Readers on real files of each format: jsonl(.gz/.zst), parquet (FineWeb schema), WARC/WET; the `input:`
union keyed by format; the docs' own reader (docs/extending/reader.md: a .tsv format) in a real run."""

from __future__ import annotations

import gzip
import importlib.util
import re
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import zstandard
from curate_testing import REPO

from curate.pipeline import ConfigError, parse_config, run_config
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
    assert [d.text for d in docs] == [orjson.loads(line)["text"] for line in lines]
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


# ---------------------------------------------------------------------------- a format of one's own


def _reader_page_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "docs" / "extending" / "reader.md").read_text(), flags=re.S)


@pytest.fixture
def tsv_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The block of docs/extending/reader.md, imported as a module; registered for this test only."""
    from curate.pipeline.readers import base

    (block,) = _reader_page_blocks()
    monkeypatch.setattr(base, "_READERS", base._READERS.copy())
    spec = importlib.util.spec_from_loader("readme_tsv_reader", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(block, "docs/extending/reader.md (tsv reader)", "exec"), module.__dict__)
    return module


def test_docs_reader_reads_a_tsv_in_a_real_run(tsv_reader, tmp_path: Path, sample_dir: Path):
    with gzip.open(sample_dir / "c4-en-1k.jsonl.gz", "rt") as f:
        docs = [orjson.loads(line) for line in f][:50]
    rows = [f"d{i}\t{d['url']}\t{' '.join(d['text'].split())}".encode() for i, d in enumerate(docs)]
    rows[7] = b"lonely-id"  # one column only: missing_text, named with file and record
    rows[9] = b"u9\turl\t\xff\xfe"  # not UTF-8
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "pages.tsv.gz").write_bytes(gzip.compress(b"\n".join(rows) + b"\n"))
    cfg = parse_config(
        {
            "input": {"format": "tsv", "path": str(tmp_path / "in"), "text_column": 2},
            "output": {"path": str(tmp_path / "out")},
            "executor": {"tasks": 1, "workers": 1},
            "stages": [{"stage": "length_filter", "min_words": 1}],
        }
    )
    assert type(cfg.input).__name__ == "TsvOptions" and cfg.input.compression == "infer"
    stats = run_config(cfg, progress=False)
    read = stats["stages"][0]
    assert read["docs_in"] == 50 and read["dropped"] == {"missing_text": 1, "invalid_utf8": 1}
    out = pq.read_table(tmp_path / "out" / "data").to_pylist()
    assert [r["id"] for r in out] == [f"d{i}" for i in range(50) if i not in (7, 9)]
    assert out[0]["text"] == " ".join(docs[0]["text"].split())
    assert out[8]["source_record"] == 10 and out[8]["source_file"].endswith("pages.tsv.gz")


def test_a_reader_plugin_loads_from_the_config(tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """`plugins: [tsv_reader.py]` registers the docs' reader before `input:` is validated, and local
    workers (2 tasks) read with it."""
    import sys

    from curate.pipeline import load_config
    from curate.pipeline.readers import base

    monkeypatch.setattr(base, "_READERS", base._READERS.copy())
    monkeypatch.delitem(sys.modules, "tsv_reader_plugin", raising=False)
    (block,) = _reader_page_blocks()
    (tmp_path / "tsv_reader_plugin.py").write_text(block)
    (tmp_path / "in").mkdir()
    for n in range(2):
        rows = [f"f{n}d{i}\turl\tdocument {i} of file {n} has a few words".encode() for i in range(5)]
        (tmp_path / "in" / f"part{n}.tsv").write_bytes(b"\n".join(rows) + b"\n")
    (tmp_path / "run.yaml").write_text(
        "plugins: [tsv_reader_plugin.py]\n"
        "input: {format: tsv, path: in, text_column: 2}\n"
        "output: {path: out}\n"
        "executor: {tasks: 2, workers: 2}\n"
        "stages: [{stage: length_filter, min_words: 3}]\n"
    )
    try:
        cfg = load_config(tmp_path / "run.yaml")
        assert type(cfg.input).__name__ == "TsvOptions"
        stats = run_config(cfg, progress=False)
    finally:
        sys.modules.pop("tsv_reader_plugin", None)
    assert stats["complete"] and stats["stages"][0]["docs_in"] == 10
    ids = sorted(r["id"] for r in pq.read_table(tmp_path / "out" / "data").to_pylist())
    assert ids == sorted(f"f{n}d{i}" for n in range(2) for i in range(5))


def test_an_option_of_another_format_names_it(tsv_reader):
    with pytest.raises(ConfigError) as e:
        parse_config(
            {
                "input": {"format": "jsonl", "path": "x", "text_column": 2, "extract_html": False},
                "output": {"path": "y"},
            }
        )
    assert e.value.problems == [
        "input.text_column: an option of format 'tsv', not of 'jsonl'",
        "input.extract_html: an option of format 'warc', not of 'jsonl'",
    ]
    with pytest.raises(ConfigError) as e:
        parse_config({"input": {"format": "csv", "path": "x"}, "output": {"path": "y"}})
    assert e.value.problems == ["input.format: unknown format 'csv'; known formats: 'jsonl', 'parquet', 'tsv', 'warc'"]


def test_keys_shared_by_some_formats_name_them_all():
    with pytest.raises(ConfigError) as e:
        parse_config(
            {
                "input": {"format": "parquet", "path": "x", "compression": "gzip", "batch_size": 0},
                "output": {"path": "y"},
            }
        )
    assert e.value.problems[0] == "input.compression: an option of formats 'jsonl' and 'warc', not of 'parquet'"
    assert e.value.problems[1].startswith("input.batch_size: Input should be greater than 0")
    with pytest.raises(ConfigError) as e:
        parse_config({"input": {"format": "warc", "path": "x", "text_key": "body"}, "output": {"path": "y"}})
    assert e.value.problems == ["input.text_key: an option of formats 'jsonl' and 'parquet', not of 'warc'"]


def test_input_options_keep_their_defaults_and_round_trip():
    from curate.pipeline.config import CurateConfig

    c = parse_config({"input": {"format": "parquet", "path": "x"}, "output": {"path": "y"}})
    assert c.input.model_dump() == {
        "format": "parquet",
        "path": "x",
        "glob": None,
        "recursive": True,
        "limit": -1,
        "max_doc_chars": 50_000_000,
        "text_key": "text",
        "id_key": "id",
        "batch_size": 1000,
    }
    again = CurateConfig.model_validate(c.model_dump())
    assert type(again.input) is type(c.input) and again.input == c.input


def test_a_reader_format_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from curate.pipeline.readers import base

    monkeypatch.setattr(base, "_READERS", base._READERS.copy())

    class OtherJsonl(base.Source):
        pass

    with pytest.raises(ValueError, match=r"reader format 'jsonl' registered twice \(curate.pipeline.readers.jsonl"):
        base.register_reader("jsonl", base.InputConfig)(OtherJsonl)
    assert base.reader_class("jsonl").__name__ == "JsonlSource"
    assert "input_format" not in vars(OtherJsonl)  # a refused class is left as it was
