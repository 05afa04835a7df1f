"""Dedup stages on real text: the bundled sample, planted repeats, planted near-duplicates, full runs."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curate_testing.corpora import edit_words, near_dup_scores, planted_near_dups
from datatrove.data import Document

from curate.core.errors import ConfigError, CurateError
from curate.dedup.stages.exact_substring import REMOVED_CHARS, REMOVED_SPANS, ExactSubstringDedup, ExactSubstringOptions
from curate.dedup.stages.minhash import CLUSTER_ID
from curate.dedup.tokenize import UnitTokenizer, get_tokenizer
from curate.pipeline import parse_config, run_config, run_stages


def load(path: Path) -> list[dict]:
    with gzip.open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh]


@pytest.fixture(scope="module")
def dolma(sample_dir: Path) -> list[dict]:
    return load(sample_dir / "dolma-cc-2019-00140.jsonl.gz")


@pytest.fixture(scope="module")
def c4(sample_dir: Path) -> list[dict]:
    return load(sample_dir / "c4-en-1k.jsonl.gz")


def test_default_and_hf_tokenizers_agree_on_real_text(c4, dolma, repo_root: Path) -> None:
    texts = [r["text"] for r in c4[:300] + dolma[:300]]
    fast = UnitTokenizer(threads=2)  # fastokens, or tiktoken without it (tests/dedup/test_tokenizers.py)
    hf = UnitTokenizer(repo_root / "dedup" / "assets" / "gpt2" / "tokenizer.json")
    assert fast.engine in ("fastokens", "tiktoken") and hf.engine == "tokenizers"
    a, b = fast.encode_batch(texts), hf.encode_batch(texts)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert fast.encode("Hello world").tolist() == [15496, 995]
    # byte lengths add up to the UTF-8 text for every doc (spans map back exactly)
    assert all(int(fast.byte_len[x].sum()) == len(t.encode()) for x, t in zip(a, texts))


@pytest.mark.parametrize("threads", [1, 2])
def test_encode_shard_equals_text_by_text_encoding(c4, dolma, repo_root: Path, threads: int) -> None:
    """The shard layout (chunks joined with <|endoftext|> in one tiktoken call) gives every text its own
    ids: chunks whose texts contain that special text literally, empty texts, many chunks, both engines."""
    texts = [r["text"] for r in c4[:400] + dolma[:400]]
    texts[3] = "before <|endoftext|> after"  # special text inside a document is ordinary text
    texts[500:503] = ["", "   ", "<|endoftext|>"]
    for path, engine in (
        (None, None),
        (None, "tiktoken"),
        (repo_root / "dedup" / "assets" / "gpt2" / "tokenizer.json", None),
    ):
        tok = UnitTokenizer(path, threads=threads, engine=engine)
        units, lengths = tok.encode_shard(texts, sum(len(t.encode()) for t in texts) + len(texts))
        assert units.dtype == np.dtype(">u2")
        want = np.concatenate([np.append(tok.encode(t), tok.sep_id) for t in texts]).astype(np.uint16)
        assert np.array_equal(units.astype(np.uint16), want)
        assert lengths.tolist() == [len(tok.encode(t)) for t in texts]
    for engine in ("tiktoken", None):  # the special text is not the special id
        assert 50256 not in UnitTokenizer(engine=engine).encode(texts[3]).tolist()
    with pytest.raises(CurateError, match="max_units"):
        UnitTokenizer().encode_shard(texts[:10], 10)


def test_exact_doc_dedup_finds_the_35_duplicates_of_the_dolma_file(dolma) -> None:
    norm = [re.sub(r"\s+", " ", r["text"]).strip() for r in dolma]
    expect = len(norm) - len(set(norm))
    assert expect == 35
    res = run_stages([{"id": r["id"], "text": r["text"]} for r in dolma], [{"stage": "exact_doc_dedup"}])
    st = res.stage("exact_doc_dedup")
    assert st["dropped"] == {"exact_duplicate": 35} and st["conserved"]
    kept = [re.sub(r"\s+", " ", d.text).strip() for d in res.docs]
    assert len(kept) == len(set(kept)) == len(set(norm))
    # the first copy in input order survives
    first_ids = {}
    for r, n in zip(dolma, norm):
        first_ids.setdefault(n, r["id"])
    assert {d.id for d in res.docs} == set(first_ids.values())


def test_esd_on_real_text_cuts_planted_spans_and_keeps_first_copy(c4) -> None:
    rng = np.random.default_rng(5)
    texts = [r["text"] for r in c4 if len(r["text"]) > 2000][:200]
    # first make sure these docs share nothing long on their own (so the test is about our plants)
    base = run_stages(texts, [ExactSubstringDedup(ExactSubstringOptions(units="tokens", min_length=50))])
    texts = [d.text for d in base.docs]
    planted = []
    for _k in range(30):
        src = int(rng.integers(0, 100))
        dst = int(rng.integers(100, 200))
        a = int(rng.integers(0, len(texts[src]) - 800))
        span = texts[src][a : a + 800]
        at = texts[dst].find(" ", int(rng.integers(0, len(texts[dst]))))
        at = max(at, 0)
        texts[dst] = texts[dst][:at] + " " + span + " " + texts[dst][at:]
        planted.append((src, dst, span))
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    out = {d.id: d for d in run_stages(docs, [{"stage": "exact_substring_dedup"}]).docs}
    for src, dst, span in planted:
        # the source (first in text order) keeps its copy; the planted copy is cut, bar <= 50 tokens at the edges
        assert span in out[str(src)].text
        assert span not in out[str(dst)].text
        assert out[str(dst)].metadata[REMOVED_CHARS] >= 600
    untouched = set(range(200)) - {d for _, d, _ in planted} - {s for s, _, _ in planted}
    for i in untouched:
        assert out[str(i)].text == texts[i] and out[str(i)].metadata[REMOVED_SPANS] == 0


def test_shard_without_duplicates_passes_through_unchanged(c4) -> None:
    texts = [r["text"] for r in c4[:50]]
    res = run_stages(texts, [{"stage": "exact_substring_dedup", "min_length": 5000}])
    assert [d.text for d in res.docs] == texts
    assert all(d.metadata[REMOVED_SPANS] == 0 for d in res.docs)
    assert res.stage("exact_substring_dedup")["chars_out"] == sum(map(len, texts))


def test_shards_are_bounded_and_independent() -> None:
    a = "the quick brown fox jumps over the lazy dog " * 3
    docs = [a, "x" * 10, a]  # a shard closes once it holds >= 130 bytes: [a], [x.., a]
    res = run_stages(
        docs, [{"stage": "exact_substring_dedup", "units": "bytes", "min_length": 100, "shard_bytes": 130}]
    )
    assert res.docs[2].text == a  # a is repeated 3x inside itself only at length 44 < 100
    assert res.stage("exact_substring_dedup")["extra"]["esd_shards"] == 2
    res = run_stages(docs, [{"stage": "exact_substring_dedup", "units": "bytes", "min_length": 100}])
    assert res.docs[2].text == "" and res.docs[0].text == a


@pytest.mark.parametrize("chunk_docs,threads", [(3, 1), (5, 2), (256, 2)])
def test_shards_by_tokens_match_independent_shards(
    c4, monkeypatch: pytest.MonkeyPatch, chunk_docs: int, threads: int
) -> None:
    """shard_tokens: a shard ends at the first document whose running token count reaches the limit, wherever
    the tokenizer's batches end (tiny chunks make shards end mid-batch and batches hold several shards);
    each shard is deduplicated on its own, exactly as if it had been given alone."""
    import curate.dedup.tokenize as tokmod

    monkeypatch.setattr(tokmod, "CHUNK_DOCS", chunk_docs)
    rng = np.random.default_rng(7)
    texts = [r["text"] for r in c4[:120]]
    for i in rng.choice(np.arange(4, len(texts)), 40, replace=False).tolist():  # planted repeats, mostly near
        src = texts[i - int(rng.integers(1, 4))] if rng.random() < 0.7 else texts[int(rng.integers(len(texts)))]
        texts[i] = texts[i] + " " + src[:1200]
    texts[30] = texts[31]  # a whole-document copy
    texts[10] = texts[9]  # a copy right across the boundary of the second limit's first shard: must survive
    tok = get_tokenizer(None, 1)
    counts = [len(tok.encode(t)) for t in texts]
    for limit in (6000, sum(counts[:10])):  # the second is reached exactly by document 9
        groups, cur, acc = [], [], 0  # the shards by the definition, independently
        for t, n in zip(texts, counts):
            cur.append(t)
            acc += n
            if acc >= limit:
                groups.append(cur)
                cur, acc = [], 0
        groups.append(cur) if cur else None
        want = []
        for g in groups:
            # shard_bytes above the whole corpus: each group is one shard
            want += [
                d.text
                for d in ExactSubstringDedup(ExactSubstringOptions(min_length=50, shard_bytes=10**8))(
                    iter([Document(text=t, id=str(i)) for i, t in enumerate(g)])
                )
            ]
        step = ExactSubstringDedup(ExactSubstringOptions(min_length=50, shard_tokens=limit, threads=threads))
        got = [d.text for d in step(iter([Document(text=t, id=str(i)) for i, t in enumerate(texts)]))]
        assert got == want
        assert step.stats["esd_shards"].total == len(groups) > 5
        if limit != 6000:  # doc 9 reaches the limit exactly: doc 10 (its copy) opens the next shard, untouched
            assert len(groups[0]) == 10 and got[10] == texts[10]
    assert sum(a != b for a, b in zip(got, texts)) > 10  # something was cut
    with pytest.raises(ConfigError, match="units: tokens"):
        run_stages(["x"], [{"stage": "exact_substring_dedup", "units": "bytes", "shard_tokens": 10}])


def test_emptied_documents_kept_or_dropped_and_counted() -> None:
    a = "Some paragraph of text that is repeated as a whole document, word for word, twice. " * 2
    docs = [a, "unrelated short doc", a + "\n"]
    kept = run_stages(docs, [{"stage": "exact_substring_dedup", "units": "bytes", "min_length": 50}])
    st = kept.stage("exact_substring_dedup")
    assert len(kept.docs) == 3 and kept.docs[2].text.strip() == "" and st["extra"]["esd_docs_emptied"] == 1
    dropped = run_stages(
        docs, [{"stage": "exact_substring_dedup", "units": "bytes", "min_length": 50, "drop_empty": True}]
    )
    st = dropped.stage("exact_substring_dedup")
    assert len(dropped.docs) == 2 and st["dropped"] == {"esd_emptied": 1} and st["conserved"]


def test_memory_guard_refuses_a_shard_it_cannot_hold() -> None:
    with pytest.raises(ConfigError, match="max_memory_gb"):
        run_stages(["x"], [{"stage": "exact_substring_dedup", "shard_bytes": 10**10, "max_memory_gb": 4}])
    # the configured shard fits (~48 MiB), but one document larger than shard_bytes makes a shard that does not
    step = ExactSubstringDedup(ExactSubstringOptions(units="bytes", shard_bytes=1000, max_memory_gb=0.05))
    with pytest.raises(CurateError, match="lower shard_bytes or raise max_memory_gb"):
        list(step(iter([Document(text="y" * 10**6, id="0")])))


def test_text_is_given_back_when_the_shard_fails(c4, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step holds a shard's text as UTF-8 and empties the documents' strings meanwhile; a failure
    (here an injected MemoryError in the suffix-array phase) must leave every document as it came."""
    import curate.dedup.stages.exact_substring as esd

    texts = [r["text"] for r in c4[:40]] + ["x\ud800y"]  # the last one (a lone surrogate) is never touched
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]

    def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        assert all(d.text == "" for d in docs[:-1])  # really let go while the suffix array is built
        raise MemoryError("injected")

    monkeypatch.setattr(esd, "duplicate_runs", boom)
    for units, shard_tokens in (("tokens", None), ("bytes", None), ("tokens", 10**7)):
        with pytest.raises(MemoryError):
            opts = ExactSubstringOptions(units=units, min_length=50, shard_tokens=shard_tokens)
            list(ExactSubstringDedup(opts)(iter(docs)))
        assert [d.text for d in docs] == texts

    # shards by tokens hold the text of documents read ahead: an upstream failure gives it back too
    def upstream():  # noqa: ANN202
        yield from docs[:30]
        raise OSError("input file went away")

    monkeypatch.undo()
    with pytest.raises(OSError):
        list(ExactSubstringDedup(ExactSubstringOptions(min_length=50, shard_tokens=10**7))(upstream()))
    assert [d.text for d in docs] == texts
    # and a consumer that stops early keeps what it got, cut; the rest is given back
    out = ExactSubstringDedup(ExactSubstringOptions(min_length=50, shard_tokens=200))(iter(docs))
    first = next(out)
    out.close()
    assert first.text == texts[0] and [d.text for d in docs] == texts


def test_other_tokenizer_json_and_non_byte_level_refused(repo_root: Path) -> None:
    llama = repo_root / "refiners" / "assets" / "llama2" / "tokenizer.json"
    if llama.exists():
        with pytest.raises(ConfigError, match="byte-level"):
            UnitTokenizer(llama)
    tok = get_tokenizer(str(repo_root / "dedup" / "assets" / "gpt2" / "tokenizer.json"))
    assert tok.engine == "tokenizers" and tok.dtype == np.uint16


# ------------------------------------------------------------------ MinHash with planted near-duplicates


def test_minhash_precision_recall_on_planted_near_duplicates(c4) -> None:
    docs, pairs = planted_near_dups(c4, [0.05, 0.10, 0.15, 0.20], per_rate=40)
    res = run_stages(docs, [{"stage": "minhash_dedup"}])
    st = res.stage("minhash_dedup")
    assert st["conserved"] and set(st["dropped"]) <= {"near_duplicate"}
    precision, recall = near_dup_scores(docs, pairs, res)
    print(f"minhash 5-gram 14x8 (FineWeb default): precision {precision:.3f} recall by edit rate {recall}")
    assert precision >= 0.95
    assert recall[0.05] >= 0.2 and recall[0.05] >= recall[0.20]  # 5-grams only catch light edits
    # 2-word shingles, 25 bands x 4 rows (threshold ~0.45) catch 5-20% word edits on real text
    res2 = run_stages(docs, [{"stage": "minhash_dedup", "ngram": 2, "buckets": 25, "hashes_per_bucket": 4}])
    p2, r2 = near_dup_scores(docs, pairs, res2)
    print(f"minhash 2-gram 25x4: precision {p2:.3f} recall by edit rate {r2}")
    assert p2 >= 0.95 and min(r2[0.05], r2[0.10], r2[0.15]) >= 0.9 and r2[0.20] >= 0.7
    # cluster ids: the surviving member of a detected pair carries a cluster id, others None (null)
    ids = {d.id: d.metadata[CLUSTER_ID] for d in res.docs}
    assert any(isinstance(v, int) and v >= 0 for v in ids.values()) and None in ids.values()
    assert all(v is None or isinstance(v, int) for v in ids.values())


def test_whitespace_normalization_equals_the_regex_on_every_space_character() -> None:
    import sys
    import unicodedata

    from datatrove.data import Document

    from curate.dedup.normalize import text_whitespace

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if re.match(r"\s", chr(c)) or chr(c).isspace()]
    assert len(spaces) > 20
    rng = np.random.default_rng(9)
    pieces = spaces + ["a", "b", "\u00e9", "e\u0301", "\u200b", "\ufeff", "x y", ""]
    for _ in range(3000):
        t = "".join(pieces[int(i)] for i in rng.integers(len(pieces), size=int(rng.integers(0, 12))))
        want = re.sub(r"\s+", " ", unicodedata.normalize("NFC", t)).strip()
        assert text_whitespace(Document(text=t, id="0")) == want, repr(t)


def test_minhash_kernels_find_the_same_light_copies(c4) -> None:
    """`kernel: datatrove` (datatrove's own signature step, the benchmark's baseline) and the default rensa
    kernel: other hash functions, the same estimator; on copies with 1% of words edited (Jaccard ~0.9) both
    find every copy and nothing else."""
    rng = np.random.default_rng(3)
    base = [r["text"] for r in c4[:120] if len(r["text"].split()) > 150][:40]
    vocab = sorted({w for t in base for w in t.split()})
    docs = base + [edit_words(t, 0.01, rng, vocab) for t in base[:20]]
    dropped = {}
    for kernel in ("rensa", "datatrove"):
        res = run_stages(docs, [{"stage": "minhash_dedup", "kernel": kernel}])
        st = res.stage("minhash_dedup")
        assert st["conserved"] and st["dropped"] == {"near_duplicate": 20}, (kernel, st["dropped"])
        kept = {int(d.id) for d in res.docs}
        dropped[kernel] = set(range(len(docs))) - kept
        assert all((i in dropped[kernel]) != (i + 40 in dropped[kernel]) for i in range(20))  # one of each pair
        assert not dropped[kernel] & set(range(20, 40))  # the unedited singletons stay
    assert dropped["rensa"] == dropped["datatrove"]  # first copy kept: the same documents go


# ------------------------------------------------------------------ full runs with the local executor


def _write_jsonl_gz(path: Path, records: list[dict]) -> None:
    with gzip.open(path, "wb") as fh:
        for r in records:
            fh.write(orjson.dumps(r) + b"\n")


@pytest.mark.slow
def test_local_run_two_tasks_dedups_across_tasks_and_conserves(tmp_path: Path, c4) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    a = [{"id": f"a{i}", "text": r["text"]} for i, r in enumerate(c4[:150])]
    # task 2's file repeats 20 docs of task 1's file exactly and 20 with a light edit (1% of words: shingle
    # Jaccard ~0.9, which 14x8 bands catch with probability > 0.99; at 3% it sits on the S-curve's slope)
    rng = np.random.default_rng(1)
    vocab = sorted({w for r in a for w in r["text"].split()})
    b = [{"id": f"b{i}", "text": r["text"]} for i, r in enumerate(c4[150:280])]
    b += [{"id": f"dup{i}", "text": a[i]["text"]} for i in range(20)]
    b += [
        {"id": f"near{i}", "text": edit_words(a[20 + i]["text"], 0.01, rng, vocab)}
        for i in range(20)
        if len(a[20 + i]["text"].split()) > 100
    ]
    _write_jsonl_gz(inp / "a.jsonl.gz", a)
    _write_jsonl_gz(inp / "b.jsonl.gz", b)
    cfg = {
        "name": "dedup-run",
        "input": {"format": "jsonl", "path": str(inp), "glob": "*.jsonl.gz"},
        "output": {"path": str(tmp_path / "out"), "keep_rejected": True},
        "executor": {"kind": "local", "tasks": 2, "workers": 2},
        "stages": [{"stage": "exact_doc_dedup"}, {"stage": "exact_substring_dedup"}, {"stage": "minhash_dedup"}],
    }
    stats = run_config(parse_config(cfg), progress=False)
    by = {s["label"]: s for s in stats["stages"]}
    assert stats["conserved"] and all(s["conserved"] for s in stats["stages"] if "docs_in" in s)
    norm = [re.sub(r"\s+", " ", r["text"]).strip() for r in a + b]
    assert len(norm) - len(set(norm)) >= 20
    assert by["exact_doc_dedup"]["dropped"] == {"exact_duplicate": len(norm) - len(set(norm))}
    near = sum(1 for r in b if r["id"].startswith("near"))
    assert by["minhash_dedup"]["dropped"].get("near_duplicate", 0) >= near - 2
    rows = [r for f in sorted((tmp_path / "out" / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    rejected = [r for f in (tmp_path / "out" / "rejected").rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert len(rows) + len(rejected) == len(a) + len(b)
    assert {REMOVED_SPANS, REMOVED_CHARS, CLUSTER_ID} <= set(rows[0])
    assert not any(r["id"].startswith("dup") for r in rows)  # copies in task 2 of task-1 docs are the ones dropped
    ids = pa.concat_tables(pq.read_table(f) for f in (tmp_path / "out" / "data").glob("*.parquet")).column(CLUSTER_ID)
    assert ids.type == pa.int64() and 0 < ids.null_count < len(ids)  # null where a doc is in no cluster


def test_cli_run_shows_no_per_task_bars(tmp_path: Path, c4, capfd, monkeypatch: pytest.MonkeyPatch) -> None:
    """datatrove's dedup steps draw tqdm bars per task; `curate run` keeps its own display only."""
    import datatrove.pipeline.dedup.exact_dedup as exact
    import datatrove.pipeline.dedup.minhash as minhash
    import yaml

    from curate.pipeline.cli import main

    for mod in (exact, minhash):  # restored after the test: the CLI patches them for its process
        monkeypatch.setattr(mod, "tqdm", mod.tqdm)
    for var in ("TQDM_DISABLE", "CURATE_LOG_LEVEL"):  # absent during the test, and absent again after it
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    inp = tmp_path / "in"
    inp.mkdir()
    _write_jsonl_gz(inp / "a.jsonl.gz", [{"id": str(i), "text": r["text"]} for i, r in enumerate(c4[:60])])
    cfg = {
        "input": {"format": "jsonl", "path": str(inp)},
        "output": {"path": str(tmp_path / "out")},
        "executor": {"kind": "local", "tasks": 1, "workers": 1},
        "stages": [{"stage": "exact_doc_dedup"}, {"stage": "minhash_dedup"}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "c.yaml"), "--no-progress"]) == 0
    err = capfd.readouterr().err
    assert "minhash_dedup" in err  # the summary table
    assert "Reading dup files" not in err and "Initializing pq" not in err and "it/s" not in err
