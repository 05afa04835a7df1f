"""decontaminate: the kernel against a brute-force oracle (Hypothesis), the Bloom filter's false-positive rate,
and the stage in a real `curate run` with eval-set files."""

from __future__ import annotations

import gzip
import json
import random
import unicodedata
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.core import edits
from curate.dedup import decontam as dc
from curate.pipeline import parse_config, run_config

# -- the oracle: plain Python, one character at a time, sets of word tuples ------------------------------


def oracle_words(text: str) -> list[tuple[int, int, str]]:
    """(start, end, normalized word) of every word: runs of L*/N*/M* characters, each lowercased one to one."""
    out, start, chars = [], None, []
    for i, ch in enumerate(text + " "):
        if unicodedata.category(ch)[0] in "LNM":
            if start is None:
                start = i
            low = ch.lower()[0]
            chars.append("σ" if low == "ς" else low)
        elif start is not None:
            out.append((start, i, "".join(chars)))
            start, chars = None, []
    return out


def oracle(docs: list[str], items: list[str], item_set: list[int], n: int) -> dict[int, dict]:
    grams: dict[tuple[str, ...], set[int]] = {}
    for it, text in enumerate(items):
        ws = [w for _, _, w in oracle_words(text)]
        for j in range(len(ws) - n + 1):
            grams.setdefault(tuple(ws[j : j + n]), set()).add(it)
    out: dict[int, dict] = {}
    for d, text in enumerate(docs):
        ws = oracle_words(text)
        for j in range(len(ws) - n + 1):
            its = grams.get(tuple(w for _, _, w in ws[j : j + n]))
            if not its:
                continue
            r = out.setdefault(d, {"positions": [], "spans": [], "sets": {}, "items": {}})
            r["positions"].append(j)
            r["spans"].append((ws[j][0], ws[j + n - 1][1]))
            for s in {item_set[i] for i in its}:
                r["sets"][s] = r["sets"].get(s, 0) + 1
            for i in its:
                r["items"][i] = r["items"].get(i, 0) + 1
    return out


def oracle_cut(spans: list[tuple[int, int]], margin: int, length: int) -> list[tuple[int, int]]:
    covered = [False] * length
    for s, e in spans:
        for i in range(max(0, s - margin), min(length, e + margin)):
            covered[i] = True
    runs, start = [], None
    for i, c in enumerate([*covered, False]):
        if c and start is None:
            start = i
        elif not c and start is not None:
            runs.append((start, i))
            start = None
    return runs


def oracle_remove(text: str, spans: list[tuple[int, int]]) -> str:
    out = text
    for s, e in reversed(spans):  # from the end: earlier offsets stay valid
        out = out[:s] + "\n" + out[e:]
    return out


# -- generated corpora ----------------------------------------------------------------------------------

WORDS = [
    "the", "The", "THE", "cat", "Cat", "sat", "on", "mat", "42", "3.14", "naïve", "NAÏVE", "café", "ΣΟΦΙΑ",
    "σοφια", "σοφιας", "ΟΔΟΣ", "οδος", "İstanbul", "istanbul", "straße", "東京", "東京タワー", "e\u0301t\u00e9",
    "don't", "x_y", "Ꭰ", "ꭰ", "a", "b", "c",
]  # fmt: skip
SEPS = [" ", "  ", "\n", "\r\n", ", ", " — ", "“", "”", "...", "!\n\n", "\t", "\u00a0", "\u3000", "-", "'", " (", ") "]


@st.composite
def corpus(draw: st.DrawFn) -> tuple[int, list[str], list[int], list[str]]:
    n = draw(st.integers(2, 5))
    word = st.sampled_from(WORDS)
    sep = st.sampled_from(SEPS)

    def render(ws: list[str]) -> str:
        return "".join(w + draw(sep) for w in ws)

    items_words = draw(st.lists(st.lists(word, min_size=0, max_size=12), min_size=1, max_size=6))
    items = [render(ws) for ws in items_words]
    item_set = [draw(st.integers(0, 2)) for _ in items]
    docs = []
    for _ in range(draw(st.integers(1, 6))):
        parts: list[str] = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["noise", "planted", "near_miss"]))
            src = draw(st.sampled_from(items_words))
            if kind == "noise" or len(src) < n:
                parts += draw(st.lists(word, max_size=8))
                continue
            j = draw(st.integers(0, len(src) - n))
            gram = src[j : j + n] if kind == "planted" else src[j : j + n - 1]
            parts += [draw(st.sampled_from([w, w.upper(), w.lower()])) for w in gram]
        docs.append(draw(sep) * draw(st.integers(0, 1)) + render(parts))
    return n, items, item_set, docs


def _check(n: int, items: list[str], item_set: list[int], docs: list[str]) -> None:
    index = dc.build_exact(items, np.asarray(item_set, dtype=np.int16), n)
    got = dc.Searcher(n, exact=index).search(docs)
    want = oracle(docs, items, item_set, n)
    assert set(got) == set(want)
    for d, w in want.items():
        g = got[d]
        assert g.positions == w["positions"]
        assert g.spans == w["spans"]
        assert g.sets == w["sets"]
        assert g.items == w["items"]
        for margin in (0, 3, 50):
            assert dc.cut_spans(g.spans, margin, len(docs[d])) == oracle_cut(w["spans"], margin, len(docs[d]))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus())
def test_exact_search_equals_the_brute_force_oracle(case: tuple[int, list[str], list[int], list[str]]) -> None:
    _check(*case)


def test_normalization_table_equals_the_oracle_on_every_code_point() -> None:
    table = dc._lower_table()
    for cp in range(0x110000):
        ch = chr(cp)
        want = ""
        if unicodedata.category(ch)[0] in "LNM":
            want = ch.lower()[0]
            want = "σ" if want == "ς" else want
        assert table[cp] == (ord(want) if want else 0), hex(cp)


def test_a_hash_hit_whose_words_differ_is_not_a_match() -> None:
    index = dc.build_exact(["alpha beta gamma"], np.zeros(1, dtype=np.int16), 3)
    assert dc.Searcher(3, exact=index).search(["Alpha, beta; gamma!"])
    assert index.blob.tobytes() == b"alpha beta gamma"
    index.blob = np.frombuffer(b"alpha beta delta", dtype=np.uint8)  # same hashes, other words: a collision
    assert dc.Searcher(3, exact=index).search(["Alpha, beta; gamma!"]) == {}


def test_bloom_false_positive_rate_is_as_stated() -> None:
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, size=50_000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    others = rng.integers(0, 2**63, size=400_000, dtype=np.uint64) * np.uint64(2)  # even: never a key
    for p in (1e-2, 1e-3):
        bloom = dc.BloomIndex.build(keys, p)
        assert bloom.contains(keys).all()  # no false negatives
        measured = bloom.contains(others).mean()
        # the filter is rounded up to a power of two of bits: its stated rate is at most p
        assert bloom.expected_fp_rate <= p
        assert measured <= 1.5 * bloom.expected_fp_rate + 5 / others.shape[0]
        assert measured >= 0.5 * bloom.expected_fp_rate


def test_bloom_search_finds_every_exact_hit() -> None:
    items = ["one two three four", "five six seven eight"]
    docs = ["x One two three y", "six seven eight", "nothing"]
    exact = dc.Searcher(3, exact=dc.build_exact(items, np.array([0, 1], dtype=np.int16), 3)).search(docs)
    _, hashes, item, _ = dc.item_ngrams(items, 3)
    blooms = [dc.BloomIndex.build(hashes[item == s], 1e-6) for s in (0, 1)]
    bloom = dc.Searcher(3, blooms=blooms).search(docs)
    assert {d: (h.positions, h.sets) for d, h in bloom.items()} == {d: (h.positions, h.sets) for d, h in exact.items()}


def _planted(sample_dir: Path) -> tuple[list[str], list[str]]:
    """Real text: 20-word eval items from some documents, copies of their 12 / 13 / 14 first words (upper-cased,
    split over lines) planted once or twice in other documents."""
    texts = [orjson.loads(line)["text"] for line in gzip.open(sample_dir / "c4-en-1k.jsonl.gz", "rb")][:300]
    rng = random.Random(3)
    items, docs = [], []
    for t in texts[:40]:
        ws = t.split()
        if len(ws) > 30:
            a = rng.randrange(len(ws) - 20)
            items.append(" ".join(ws[a : a + 20]))
    for t in texts[100:300]:
        ws = t.split()
        for _ in range(rng.choice([0, 0, 1, 2])):
            src = rng.choice(items).split()
            k = rng.choice([12, 13, 14])  # a near miss, exactly n, one more
            at = rng.randrange(len(ws) + 1)
            ws[at:at] = [w.upper() for w in src[:k]]
        docs.append("\n".join(" ".join(ws[i : i + 7]) for i in range(0, len(ws), 7)))  # line breaks inside
    return items, docs


def test_the_13_gram_default_on_real_text_with_planted_overlaps(sample_dir: Path) -> None:
    items, docs = _planted(sample_dir)
    _check(13, items, [0] * len(items), docs)


@pytest.mark.parametrize("mode", ["drop", "cut", "annotate"])
def test_the_step_acts_on_the_documents_the_oracle_finds(mode: str, sample_dir: Path, tmp_path: Path) -> None:
    from datatrove.data import Document

    from curate.dedup.stages.decontaminate import Decontaminate, DecontaminateOptions, IndexEvalSets

    items, docs = _planted(sample_dir)
    with open(tmp_path / "e.jsonl", "w") as fh:
        fh.writelines(json.dumps({"q": t}) + "\n" for t in items)
    opts = DecontaminateOptions(
        mode=mode,
        min_overlaps=2,
        cut_margin=10,
        min_chars_left=50,
        eval_sets=[{"name": "e", "path": str(tmp_path / "e.jsonl"), "text_keys": ["q"]}],
    )
    list(IndexEvalSets(opts, str(tmp_path / "index")).run())
    step = Decontaminate(opts, str(tmp_path / "index"), str(tmp_path / "report"))
    out = {d.id: d for d in step(Document(t, str(i)) for i, t in enumerate(docs))}
    want = oracle(docs, items, [0] * len(items), 13)
    dropped = step._counts.dropped
    expect_dropped = 0
    for i, t in enumerate(docs):
        hits = len(want[i]["positions"]) if i in want else 0
        contaminated = hits >= 2
        doc = out.get(str(i))
        if not contaminated or mode == "annotate":
            assert doc is not None and doc.text == t and doc.metadata["decon_hits"] == hits
            assert doc.metadata["decon_sets"] == (["e"] if hits else None)
            continue
        if mode == "drop":
            assert doc is None
            expect_dropped += 1
            continue
        spans = oracle_cut(want[i]["spans"], 10, len(t))
        left = oracle_remove(t, spans)
        if sum(not c.isspace() for c in left) < 50:
            assert doc is None
            expect_dropped += 1
        else:
            assert doc is not None and doc.text == left and doc.metadata["decon_spans"] == [list(s) for s in spans]
            recorded = doc.metadata["edits"]
            assert edits.undo(doc.text, recorded) == t  # curate diff rebuilds the text the stage received
            assert [(r["start"], r["end"], r["note"]) for r in recorded] == [(s, e, "eval set e") for s, e in spans]
    assert dict(dropped) == ({"contaminated/e": expect_dropped} if expect_dropped else {})
    assert len(out) + expect_dropped == len(docs)  # docs in = out + dropped
    assert any(len(w["positions"]) >= 2 for w in want.values()) and any(len(w["positions"]) == 1 for w in want.values())


# -- the stage in a real run ----------------------------------------------------------------------------


def _sample(sample_dir: Path) -> list[dict]:
    out = []
    for f in sorted(sample_dir.glob("*.jsonl.gz")):
        with gzip.open(f, "rb") as fh:
            out += [orjson.loads(line) for line in fh]
    return out


@pytest.fixture(scope="module")
def decon_run(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[dict], list]:
    tmp = tmp_path_factory.mktemp("decon")
    records = _sample(sample_dir)
    rng = random.Random(7)
    picked = rng.sample([r for r in records if len(r["text"].split()) > 60], 8)
    qa = []
    for r in picked[:5]:
        ws = r["text"].split()
        qa.append({"question": " ".join(ws[5:15]), "choices": [" ".join(ws[15:20]), "zzz"], "answer": "B"})
    qa.append({"question": "a question that appears in no web page of the sample at all, surely", "choices": []})
    with open(tmp / "qa.jsonl", "w") as fh:
        fh.writelines(json.dumps(q) + "\n" for q in qa)
    passages = [" ".join(r["text"].split()[20:50]) for r in picked[5:]]
    pq.write_table(pa.table({"passage": passages}), tmp / "read.parquet")
    out = tmp / "out"
    cfg = {
        "name": "decon",
        "input": {"format": "jsonl", "path": str(sample_dir), "glob": "*.jsonl.gz"},
        "output": {"path": str(out), "keep_rejected": True},
        "executor": {"kind": "local", "tasks": 2, "workers": 2},
        "stages": [
            {
                "stage": "decontaminate",
                "mode": "drop",
                "eval_sets": [
                    {"name": "qa", "path": str(tmp / "qa.jsonl"), "text_keys": ["question", "choices"]},
                    {"name": "read", "path": str(tmp / "read.parquet"), "format": "parquet", "text_keys": ["passage"]},
                ],
            }
        ],
    }
    stats = run_config(parse_config(cfg), progress=False)
    items = [q["question"] + "\n" + "\n".join(q["choices"]) for q in qa] + passages
    return out, stats, records, [items, [0] * len(qa) + [1] * len(passages)]


@pytest.mark.slow
def test_a_run_drops_exactly_the_documents_the_oracle_finds(decon_run) -> None:
    out, stats, records, (items, item_set) = decon_run
    texts = [r["text"] for r in records if r["text"].strip()]
    want = oracle(texts, items, item_set, 13)
    names = ["qa", "read"]
    kept = pq.read_table(out / "data").to_pylist()
    rejected = pq.read_table(out / "rejected" / "decontaminate").to_pylist()
    assert len(kept) + len(rejected) == len(texts)
    assert sorted(r["text"] for r in rejected) == sorted(texts[d] for d in want)
    for r in rejected:
        assert r["drop_reason"].startswith("contaminated/")
    assert all(r["decon_hits"] == 0 and r["decon_sets"] is None for r in kept)
    stage = next(s for s in stats["stages"] if s["label"] == "decontaminate")
    assert stage["conserved"] and stage["docs_in"] == len(texts)
    assert sum(stage["dropped"].values()) == len(want)
    report = stage["report"]["sets"]
    for s, name in enumerate(names):
        docs = [d for d, w in want.items() if s in w["sets"]]
        assert report[name]["docs_hit"] == len(docs)
        assert report[name]["ngrams_hit"] == sum(want[d]["sets"][s] for d in docs)
        assert report[name]["eval_items"] == item_set.count(s)
        assert report[name]["examples"]
    assert report["qa"]["items_without_ngram"] == 0  # the no-match question has 13 words
    assert report["qa"]["top_items"][0]["ngrams_hit"] > 0
    saved = json.loads((out / "stats.json").read_text())
    assert next(s for s in saved["stages"] if s["label"] == "decontaminate")["report"]["sets"] == report
    card = (out / "README.md").read_text()  # the dataset card has the same per-set figures
    section = card[card.index("## Contamination") :].split("\n## ", 1)[0]
    for name, r in report.items():
        assert f"| {name} | {r['docs_hit']:,} | {r['docs_contaminated']:,} | {r['ngrams_hit']:,} |" in section


@pytest.mark.slow
def test_cut_mode_removes_the_spans_and_records_them(sample_dir: Path, decon_run, tmp_path: Path) -> None:
    _, _, records, (items, item_set) = decon_run
    texts = [r["text"] for r in records if r["text"].strip()]
    want = oracle(texts, items, item_set, 13)
    with open(tmp_path / "e.jsonl", "w") as fh:
        fh.writelines(json.dumps({"text": t}) + "\n" for t in items)
    cfg = {
        "name": "cut",
        "input": {"format": "jsonl", "path": str(sample_dir), "glob": "*.jsonl.gz"},
        "output": {"path": str(tmp_path / "out"), "keep_rejected": True},
        "executor": {"kind": "local", "tasks": 1, "workers": 1},
        "stages": [
            {
                "stage": "decontaminate",
                "mode": "cut",
                "cut_margin": 20,
                "min_chars_left": 100,
                "eval_sets": [{"name": "all", "path": str(tmp_path / "e.jsonl")}],
            }
        ],
    }
    run_config(parse_config(cfg), progress=False)
    kept = {r["text"]: r for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    cut = 0
    for d, w in want.items():
        spans = oracle_cut(w["spans"], 20, len(texts[d]))
        left = oracle_remove(texts[d], spans)
        assert texts[d] not in kept
        if sum(not c.isspace() for c in left) < 100:
            assert left not in kept
            continue
        cut += 1
        assert [tuple(s) for s in kept[left]["decon_spans"]] == spans
        assert edits.undo(left, kept[left]["edits"]) == texts[d]
        assert {r["note"] for r in kept[left]["edits"]} == {"eval set all"}
        assert kept[left]["decon_hits"] == len(w["positions"])
    assert cut > 0


@pytest.mark.slow
def test_the_report_page_and_the_summary_show_each_eval_set(decon_run) -> None:
    from curate.pipeline.inspect.report import build_report
    from curate.pipeline.stats import report_lines

    out, stats, _, _ = decon_run
    page = build_report(str(out))
    assert "id='contamination-decontaminate'" in page
    sets = next(s for s in stats["stages"] if s["label"] == "decontaminate")["report"]["sets"]
    for name, r in sets.items():
        assert f"<td>{name}</td><td class=n>{r['docs_hit']:,}</td>" in page
        assert r["examples"][0]["text"][:40].replace("&", "&amp;").replace("<", "&lt;") in page
    lines = report_lines(stats)
    assert [line.split(":")[1].strip() for line in lines] == ["eval set qa", "eval set read"]
    assert f"{sets['qa']['docs_hit']:,} documents hit" in lines[0]


def test_a_missing_eval_set_file_is_refused_before_any_job(tmp_path: Path, sample_dir: Path) -> None:
    from curate.core.errors import ConfigError
    from curate.pipeline.preflight import preflight

    cfg = {
        "name": "t",
        "input": {"format": "jsonl", "path": str(sample_dir), "glob": "*.jsonl.gz"},
        "output": {"path": str(tmp_path / "out")},
        "stages": [{"stage": "decontaminate", "eval_sets": [{"name": "mmlu", "path": str(tmp_path / "nope.jsonl")}]}],
    }
    with pytest.raises(ConfigError, match=r"stages\[0\]\.eval_sets\[0\]\.path.*eval set 'mmlu': no file"):
        preflight(parse_config(cfg), download=False)


def test_eval_set_names_must_be_unique(tmp_path: Path) -> None:
    from curate.dedup.stages.decontaminate import DecontaminateOptions

    e = {"name": "a", "path": str(tmp_path / "x.jsonl")}
    with pytest.raises(ValueError, match="repeated: a"):
        DecontaminateOptions(eval_sets=[e, e])
