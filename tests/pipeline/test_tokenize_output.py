"""Token shards read back by the trainers' own readers (megatron-core's IndexedDataset, datatrove's
DatatroveFolderDataset) equal a direct tokenization of the kept text, document by document: EOS after
each one, boundaries where the documents end, uint16 ids for GPT-2 and 4-byte ids above 65,536 ids.
Token-budget subsets are nested and rank by score, ties by id."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from curate_testing import REPO
from tokenizers import Tokenizer

from curate.core.errors import ConfigError
from curate.pipeline import parse_config, run_config
from curate.pipeline.cli import main

GPT2 = REPO / "dedup" / "assets" / "gpt2"
WORDS = ["naïve", "café", "Zürich", "straße", "日本語", "emoji🙂", "data", "token", "the", "of", "and", "shard"]
BIG_VOCAB = 70_000  # above 65,536: ids need 4 bytes


def _corpus(folder: Path) -> None:
    """Two input files; texts with Unicode, several lines, and the EOS text typed inside a document."""
    rng = random.Random(7)
    folder.mkdir()
    for f in range(2):
        with open(folder / f"{f}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(40):
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30)))
                text = f"doc {f}-{i}\n{words}" + (" <|endoftext|> tail" if i % 9 == 0 else "")
                score = round(rng.random(), 1) if i % 10 else None  # coarse: many ties, broken by id; nulls
                fh.write(json.dumps({"id": f"d{f}-{i:02d}", "score": score, "text": text}) + "\n")


def _run(tmp: Path, tokenize: dict, stages: list | None = None) -> Path:
    cfg = parse_config(
        {
            "name": "tok",
            "input": {"format": "jsonl", "path": str(tmp / "in")},
            "output": {"path": str(tmp / "out"), "metadata_columns": ["score"], "tokenize": tokenize},
            "executor": {"tasks": 2, "workers": 1},
            "stages": stages or [],
        }
    )
    stats = run_config(cfg, progress=False)
    assert stats["complete"]
    return tmp / "out"


@pytest.fixture(scope="session")
def gpt2_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with output.tokenize (Megatron, GPT-2): the tokenize job after the writer's."""
    tmp = tmp_path_factory.mktemp("tok")
    _corpus(tmp / "in")
    return _run(tmp, {"tokenizer": str(GPT2), "format": "megatron"})


@pytest.fixture(scope="session")
def big_vocab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A word-level tokenizer of 70,000 ids, built offline; the corpus words sit above 65,535."""
    from tokenizers import models, pre_tokenizers

    vocab = {"[UNK]": 0, "</s>": 1} | {f"filler{i}": i for i in range(2, 66_000)}
    extra = sorted(set(WORDS) | {"doc", "tail", "<|endoftext|>", "-"} | {str(i) for i in range(100)})
    vocab |= {w: 66_000 + k for k, w in enumerate(extra)}
    vocab |= {f"top{i}": i for i in range(len(vocab), BIG_VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["</s>"])
    path = tmp_path_factory.mktemp("bigvocab") / "tokenizer.json"
    tok.save(str(path))
    assert tok.get_vocab_size() == BIG_VOCAB
    return path


def _expected(out: Path, tokenizer: Path, eos: str | None) -> list[list[list[int]]]:
    """Per data file, each row's tokens by a plain encode of its text, then the EOS id."""
    tok = Tokenizer.from_file(str(tokenizer if tokenizer.is_file() else tokenizer / "tokenizer.json"))
    tail = [tok.token_to_id(eos)] if eos else []
    return [
        [
            tok.encode(t, add_special_tokens=False).ids + tail
            for t in pq.read_table(f, columns=["text"])["text"].to_pylist()
        ]
        for f in sorted((out / "data").glob("*.parquet"))
    ]


def _megatron_docs(folder: Path) -> tuple[list[list[list[int]]], np.dtype]:
    """Every document of every prefix through megatron-core's own reader."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    per_file, dtype = [], None
    for idx in sorted(folder.glob("*.idx")):
        ds = IndexedDataset(str(idx.with_suffix("")))
        assert list(ds.document_indices) == list(range(len(ds) + 1))  # one sequence per document
        per_file.append([ds[i].tolist() for i in range(len(ds))])
        dtype = ds.index.dtype
    return per_file, np.dtype(dtype)


def _datatrove_docs(folder: Path, token_size: int) -> list[list[int]]:
    """The merged file through datatrove's DatatroveFolderDataset: one window over the whole file, split where
    the positions it derives from the .ds.index restart at 0."""
    from datatrove.utils.dataset import DatatroveFolderDataset

    total = sum(f.stat().st_size for f in folder.glob("*.ds")) // token_size
    ds = DatatroveFolderDataset(
        str(folder), seq_len=total - 1, filename_pattern="*.ds", token_size=token_size, return_positions=True
    )
    assert len(ds) == 1
    item = ds[0]
    ids, starts = item["input_ids"].tolist(), np.flatnonzero(item["positions"].numpy() == 0).tolist()
    return [ids[a:b] for a, b in zip(starts, starts[1:] + [len(ids)])]


@pytest.mark.slow  # importing megatron.core (torch and its model code) takes ~7 s
def test_megatron_shards_of_a_run_equal_direct_tokenization(gpt2_run: Path) -> None:
    docs, dtype = _megatron_docs(gpt2_run / "tokens" / "megatron")
    expected = _expected(gpt2_run, GPT2, "<|endoftext|>")
    assert docs == expected  # task r read data file r: same documents, same order, same boundaries
    assert dtype == np.uint16
    eos = Tokenizer.from_file(str(GPT2 / "tokenizer.json")).token_to_id("<|endoftext|>")
    assert all(d[-1] == eos for f in docs for d in f)
    # "<|endoftext|>" typed in a text is the special id too (HF tokenizers' default): 1 + 1 EOS there
    assert any(d.count(eos) == 2 for f in docs for d in f)


def test_token_counts_in_stats_summary_and_card(gpt2_run: Path) -> None:
    stats = json.loads((gpt2_run / "stats.json").read_text())
    tokens = stats["tokens"]
    expected = _expected(gpt2_run, GPT2, "<|endoftext|>")
    assert tokens["documents"] == stats["output_docs"] == 80
    assert tokens["tokens"] == sum(len(d) for f in expected for d in f)
    assert [v["tokens"] for v in tokens["files"].values()] == [sum(map(len, f)) for f in expected]
    card = (gpt2_run / "README.md").read_text()
    assert "## Tokens" in card and f"{tokens['tokens']:,} tokens in 80 documents, megatron" in card
    assert card.index("## Tokens") < card.index("## Config")
    assert [j["name"] for j in stats["jobs"]][-1] == "tokenize"


def test_curate_tokenize_datatrove_merged_reads_back(gpt2_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(gpt2_run, out)
    assert main(["tokenize", str(out), "--format", "datatrove"]) == 0  # tokenizer from the run's record
    assert "tokens: " in capsys.readouterr().out
    docs = _datatrove_docs(out / "tokens" / "datatrove", token_size=2)
    assert docs == [d for f in _expected(out, GPT2, "<|endoftext|>") for d in f]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tokens"]["format"] == "datatrove" and stats["tokens"]["tokens"] == sum(map(len, docs))
    card = (out / "README.md").read_text()
    assert card.count("## Tokens") == 1 and "datatrove format (uint16 ids)" in card


def test_shuffled_datatrove_shards_hold_the_same_documents(gpt2_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(gpt2_run, out)
    assert main(["tokenize", str(out), "--format", "datatrove", "--shuffle", "--seed", "3"]) == 0
    docs = _datatrove_docs(out / "tokens" / "datatrove", token_size=2)
    flat = [d for f in _expected(out, GPT2, "<|endoftext|>") for d in f]
    assert docs != flat and sorted(docs) == sorted(flat)


@pytest.mark.parametrize("fmt", [pytest.param("megatron", marks=pytest.mark.slow), "datatrove"])
def test_vocabulary_above_65535_uses_4_byte_ids(gpt2_run: Path, big_vocab: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    shutil.copytree(gpt2_run, out)
    assert main(["tokenize", str(out), "--tokenizer", str(big_vocab), "--format", fmt, "--eos", "</s>"]) == 0
    expected = _expected(out, big_vocab, "</s>")
    assert max(i for f in expected for d in f for i in d) >= 66_000  # a uint16 writer would wrap these
    if fmt == "megatron":
        docs, dtype = _megatron_docs(out / "tokens" / "megatron")
        assert docs == expected and dtype == np.int32  # Megatron's own choice above 65,500 ids
    else:
        docs = _datatrove_docs(out / "tokens" / "datatrove", token_size=4)
        assert docs == [d for f in expected for d in f]
    assert json.loads((out / "stats.json").read_text())["tokens"]["dtype"] == (
        "int32" if fmt == "megatron" else "uint32"
    )


@pytest.mark.slow
def test_no_eos(gpt2_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(gpt2_run, out)
    assert main(["tokenize", str(out), "--no-eos"]) == 0
    docs, _ = _megatron_docs(out / "tokens" / "megatron")
    assert docs == _expected(out, GPT2, None)


def test_config_checks_before_the_run(tmp_path: Path) -> None:
    base = {"name": "t", "input": {"format": "jsonl", "path": str(tmp_path)}, "stages": []}
    with pytest.raises(ConfigError, match="shuffle applies to format: datatrove"):
        parse_config({**base, "output": {"path": str(tmp_path / "o"), "tokenize": {"tokenizer": "x", "shuffle": True}}})
    with pytest.raises(ConfigError, match="output.tokenize.formt"):
        parse_config({**base, "output": {"path": str(tmp_path / "o"), "tokenize": {"tokenizer": "x", "formt": "x"}}})
    from curate.pipeline.preflight import preflight

    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    bad_eos = {"tokenizer": str(GPT2), "eos": "</s>"}
    cfg = parse_config({**base, "output": {"path": str(tmp_path / "o"), "tokenize": bad_eos}})
    with pytest.raises(ConfigError, match=r"output.tokenize.eos: eos '</s>' is not a token"):
        preflight(cfg, download=False)
    missing = {"tokenizer": str(tmp_path / "nope")}
    cfg = parse_config({**base, "output": {"path": str(tmp_path / "o"), "tokenize": missing}})
    with pytest.raises(ConfigError, match="output.tokenize.tokenizer: tokenizer .* not found"):
        preflight(cfg, download=False)


def test_curate_tokenize_needs_a_tokenizer(tmp_path: Path, capsys) -> None:
    (tmp_path / "data").mkdir()
    assert main(["tokenize", str(tmp_path)]) == 2
    assert "--tokenizer: required" in capsys.readouterr().err


# ---------------------------------------------------------------------------- subsets


def _subset(src: Path, dest: Path, budget: int, *extra: str) -> tuple[dict, list[str]]:
    assert main(["subset", str(src), "--tokens", str(budget), "--output", str(dest), *extra]) == 0
    ids = [i for f in sorted((dest / "data").glob("*.parquet")) for i in pq.read_table(f)["id"].to_pylist()]
    return json.loads((dest / "stats.json").read_text()), ids


def _rows(out: Path) -> list[dict]:
    return [r for f in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_subsets_are_nested_best_first_and_within_budget(gpt2_run: Path, tmp_path: Path) -> None:
    everything, all_ids = _subset(gpt2_run, tmp_path / "all", 10**9, "--by", "score", "--no-shards")
    assert everything["documents"] == 80 and sorted(all_ids) == sorted(r["id"] for r in _rows(gpt2_run))
    big, big_ids = _subset(gpt2_run, tmp_path / "big", 900, "--by", "score")
    small, small_ids = _subset(gpt2_run, tmp_path / "small", 300, "--by", "score")
    assert set(small_ids) < set(big_ids)
    for s, ids, budget in ((big, big_ids, 900), (small, small_ids, 300)):
        assert s["selected_tokens"] <= budget and s["documents"] == len(ids)
        assert s["tokens"]["tokens"] == s["selected_tokens"]  # the subset's own shards agree with the ranking
    rows = _rows(gpt2_run)
    tok = Tokenizer.from_file(str(GPT2 / "tokenizer.json"))
    ranked = sorted(rows, key=lambda r: (r["score"] is None, -(r["score"] or 0), r["id"]))  # best first, nulls last
    lengths = [len(tok.encode(r["text"]).ids) + 1 for r in ranked]
    fits = int(np.searchsorted(np.cumsum(lengths), 900, side="right"))
    assert sorted(big_ids) == sorted(r["id"] for r in ranked[:fits])
    assert (tmp_path / "big" / "README.md").read_text().startswith("---\nconfigs:")
    assert "at most 900 tokens" in (tmp_path / "big" / "README.md").read_text()


def test_subset_without_column_is_reproducible_and_nested(gpt2_run: Path, tmp_path: Path) -> None:
    _, a = _subset(gpt2_run, tmp_path / "a", 500, "--no-shards")
    _, again = _subset(gpt2_run, tmp_path / "again", 500, "--no-shards")
    _, b = _subset(gpt2_run, tmp_path / "b", 200, "--no-shards")
    assert a == again and set(b) < set(a) and not (tmp_path / "a" / "tokens").exists()


def test_subset_rejects_a_text_column(gpt2_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["subset", str(gpt2_run), "--tokens", "100", "--by", "text", "--output", str(tmp_path / "s")]) == 2
    assert "not a number" in capsys.readouterr().err


def test_rerun_with_other_tokenize_options_redoes_only_the_token_jobs(tmp_path: Path) -> None:
    _corpus(tmp_path / "in")
    out = _run(tmp_path, {"tokenizer": str(GPT2)})
    data_mtime = [f.stat().st_mtime_ns for f in sorted((out / "data").glob("*.parquet"))]
    _run(tmp_path, {"tokenizer": str(GPT2), "format": "datatrove"})
    assert [f.stat().st_mtime_ns for f in sorted((out / "data").glob("*.parquet"))] == data_mtime  # stages kept
    assert not (out / "tokens" / "megatron").exists()  # the old job's shards are cleared with it
    docs = _datatrove_docs(out / "tokens" / "datatrove", token_size=2)
    assert docs == [d for f in _expected(out, GPT2, "<|endoftext|>") for d in f]
    assert json.loads((out / "stats.json").read_text())["tokens"]["format"] == "datatrove"


def test_a_run_that_keeps_nothing_writes_empty_shards(tmp_path: Path) -> None:
    _corpus(tmp_path / "in")
    out = _run(
        tmp_path, {"tokenizer": str(GPT2), "format": "datatrove"}, [{"stage": "length_filter", "min_words": 10**6}]
    )
    tokens = json.loads((out / "stats.json").read_text())["tokens"]
    assert tokens["documents"] == tokens["tokens"] == 0 and (out / "tokens" / "datatrove" / "000_tokens.ds").exists()


def test_an_empty_row_is_a_document_of_just_eos(tmp_path: Path) -> None:
    import pyarrow as pa

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": ["one two", "", "three"]}), tmp_path / "data" / "0.parquet")
    assert main(["tokenize", str(tmp_path), "--tokenizer", str(GPT2), "--format", "datatrove"]) == 0
    docs = _datatrove_docs(tmp_path / "tokens" / "datatrove", token_size=2)
    assert docs == _expected(tmp_path, GPT2, "<|endoftext|>")[0] and docs[1] == [50256]
