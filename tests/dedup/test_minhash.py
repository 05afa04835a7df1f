"""The rensa MinHash kernel's pieces against the path they replace: the batched normalization against
datatrove's `simplify_text`, shingles per document, the numpy buckets against datatrove's heap merge, the
signatures job against the handoff reader's documents, and the whole stage against the previous kernel's
steps (per-document normalization, datatrove's buckets) across several tasks."""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from curate_testing.corpora import SURROGATES, edit_words, fuzz_texts
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets
from datatrove.utils.text import simplify_text

from curate.dedup.shingles import shingle_hashes, simplify, simplify_arrow, simplify_joined
from curate.dedup.stages.minhash import CLUSTER_ID, FastBuckets, FastSignature, lex_order, minhash_config

SPECIAL = [
    "Café 12,5 € — naïve ÉCOLE\u00a0x",
    "\U0001d17b\U0001d165 a",
    "",
    " ",
    "\n\n",
    "1.2.3.4.5 x 1,2,3 ١٫٢",
    " \u0301 a \u0301 b \u0301 ",
    "\u0301",
    "\u0301 x",
    "x \u0301",
    "한국어 텍스트 1.5 ΣΑΣ σοφός ΟΔΟΣ",
    "\u0cca\u0ccb",
    "x\U0001d15e\u0301\U0001d165y",
    "１２．３ a",
    "1. 2",
    "a1.b2",
    "1.2.",
    ".1.2",
    "İstanbul İ",
    "Ⱥ ȾA",
    "1⎖2⎖3 4٫5",
    "ǅ ǈ ǋ ǲ",
    "\u1b44\u1b05\u1b35",
    "a\u0345b",
    "tab\tand\u3000ideographic\u2028line",
    "\x00\x01zero\x7f",
]


def _texts(sample_dir: Path) -> list[str]:
    texts = []
    for name in ("c4-en-1k.jsonl.gz", "dolma-cc-2019-00140.jsonl.gz"):
        with gzip.open(sample_dir / name, "rb") as fh:
            texts += [orjson.loads(line)["text"] for line in fh]
    return texts + fuzz_texts(1500, seed=5) + SPECIAL + SURROGATES


def test_simplify_equals_datatrove_on_real_text_and_fuzz(sample_dir: Path) -> None:
    texts = _texts(sample_dir)
    want = [simplify_text(t) for t in texts]
    bad = [t for t, w in zip(texts, want) if simplify(t) != w]
    assert not bad, f"{len(bad)} texts differ, first {bad[0][:80]!r}"
    # batches: texts meet at the separators (numbers, whitespace runs and marks at both ends of a text)
    rng = np.random.default_rng(0)
    for _ in range(300):
        pick = rng.integers(len(texts), size=int(rng.integers(1, 12)))
        batch = [texts[int(i)] for i in pick]
        assert simplify_joined(batch).tobytes() == "\n".join(want[int(i)] for i in pick).encode(
            "utf-8", "surrogatepass"
        ), batch
    assert simplify_joined(texts).tobytes() == "\n".join(want).encode("utf-8", "surrogatepass")


def test_simplify_arrow_equals_simplify_joined(sample_dir: Path) -> None:
    """The signatures job's entry: an Arrow string column (sliced, large or not) straight from its buffers."""
    import pyarrow as pa

    texts = [t for t in _texts(sample_dir) if t not in SURROGATES][:3000]  # Arrow holds valid UTF-8 only
    for typ in (pa.string(), pa.large_string()):
        arr = pa.array(texts, type=typ)
        for lo, hi in ((0, len(texts)), (1, 2), (7, 900), (len(texts) - 5, len(texts)), (3, 3)):
            assert simplify_arrow(arr[lo:hi]).tobytes() == simplify_joined(texts[lo:hi]).tobytes(), (typ, lo, hi)


def test_simplify_equals_datatrove_on_every_code_point() -> None:
    """Each code point between two digits, after capital sigma and before a mark, 32 to a text: every class
    shingles.py gives a character (digit, number separator, punctuation, whitespace, mark, decomposition, case,
    canonical reordering) against datatrove's own steps. All of planes 0-2 and 14 (every assigned character
    with any of those properties), every 61st code point of the others (CJK extensions, unassigned, private use)."""
    cps = [c for c in range(sys.maxunicode + 1) if c != 0x0A and (c >> 16 in (0, 1, 2, 14) or c % 61 == 0)]
    texts = ["".join(f"1{chr(c)}2 Σ{chr(c)}\u0301" for c in cps[i : i + 32]) for i in range(0, len(cps), 32)]
    got = simplify_joined(texts).tobytes().split(b"\n")
    want = [simplify_text(t).encode("utf-8", "surrogatepass") for t in texts]
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert len(got) == len(want) and not bad, f"{len(bad)} texts differ, first {texts[bad[0]][:40]!r}"


def test_lowercase_maps_each_character_on_its_own_but_capital_sigma() -> None:
    """What the per-code-point lowercasing in shingles.py rests on: str.lower in context equals the lowercase
    of each character, except capital sigma (final sigma), and lowercasing twice changes nothing."""
    chars = [chr(c) for c in range(sys.maxunicode + 1) if c != 0x03A3]
    assert "".join(chars).lower() == "".join(c.lower() for c in chars)
    assert all(c.lower().lower() == c.lower() for c in chars)


def test_shingles_stay_inside_each_text() -> None:
    texts = ["a b c d", "", "a", "x y", "a b c d", "b c d a"]
    flat, off = shingle_hashes(texts, 2)
    per = [flat[off[i] : off[i + 1]] for i in range(len(texts))]
    assert [len(p) for p in per] == [3, 0, 0, 1, 3, 3]
    assert np.array_equal(per[0], per[4])  # equal texts, equal shingles
    assert set(per[0].tolist()) & set(per[5].tolist()) == set(per[0][1:].tolist())  # "b c", "c d" shared
    assert not set(per[3].tolist()) & set(per[0].tolist())


def test_lex_order_equals_lexsort() -> None:
    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 50, 2000):
        for dtype, hi in ((np.uint64, 2**32), (np.uint64, 2**62), (np.uint32, 2**32)):
            keys = [rng.integers(0, 3 if j % 2 else hi, n).astype(dtype) for j in range(5)]
            keys[0][: n // 2] = 7  # long ties on the primary key
            assert np.array_equal(lex_order(keys), np.lexsort(keys[::-1]))


# ------------------------------------------------------------------ buckets: numpy against datatrove's merge


def _write_sig_files(folder: Path, precision: int, r: int, bands: int, rng: np.random.Generator) -> None:
    """Sorted signature files as the signatures step writes them, for tasks 0, 1 (empty), 2 and 3, with equal
    signatures inside a file, across files, and (32-bit) at the largest hash, which datatrove's reader stops at."""
    fmt = "Q" if precision == 64 else "I"
    hi = 2**32 - 1
    for b in range(bands):
        (folder / f"bucket_{b:03d}").mkdir(parents=True)
        shared = rng.integers(0, 50, (6, r))
        for rank in (0, 1, 2, 3):
            n = 0 if rank == 1 else int(rng.integers(20, 60))
            sigs = rng.integers(0, 40, (n, r))  # few values: many random collisions
            if n:
                sigs[:6] = shared
                sigs[-1] = hi
                sigs[-2, 0] = hi
            recs = sorted((tuple(int(x) for x in s), d) for d, s in enumerate(sigs))
            with open(folder / f"bucket_{b:03d}" / f"{rank:05d}.minhash.sig", "wb") as fh:
                for sig, d in recs:
                    fh.write(struct.pack(f"<{r}{fmt}I", *sig, d))


@pytest.mark.parametrize("precision", [64, 32])
def test_fast_buckets_write_what_datatrove_writes(tmp_path: Path, precision: int) -> None:
    r, bands = 3, 4
    _write_sig_files(tmp_path / "sigs", precision, r, bands, np.random.default_rng(precision))
    cfg = minhash_config(5, bands, r, 1, precision, "sha1")
    for kind, step in (("old", MinhashDedupBuckets), ("new", FastBuckets)):
        for rank in range(bands):
            list(step(str(tmp_path / "sigs"), str(tmp_path / kind), config=cfg).run(None, rank, bands) or ())
    for rank in range(bands):
        old = (tmp_path / "old" / f"{rank:05d}_00.dups").read_bytes()
        assert old and (tmp_path / "new" / f"{rank:05d}_00.dups").read_bytes() == old, rank


# ------------------------------------------------------------------ the signatures job and the whole stage


class ReferenceSignature(PipelineStep):
    """The previous rensa kernel's signature step: documents from the handoff reader, datatrove's
    simplify_text per document, the same shingles and rensa call, records sorted as datatrove sorts them."""

    name = "reference signatures"

    def __init__(self, output_folder: str, config, shingles_folder: str | None) -> None:  # noqa: ANN001
        super().__init__()
        self.output_folder, self.config, self.shingles_folder = output_folder, config, shingles_folder

    def run(self, data, rank: int = 0, world_size: int = 1):  # noqa: ANN001, ANN201
        import rensa

        cfg = self.config
        r, nb = cfg.hashes_per_bucket, cfg.num_buckets
        texts = [simplify_text(d.text) for d in data]
        flat, off = shingle_hashes(texts, cfg.n_grams)
        counts = np.diff(off).astype(np.int64)
        has = counts > 0
        rows = np.zeros((0, r * nb), dtype=np.uint32)
        if has.any():
            rows = np.asarray(
                rensa.RMinHash.digest_matrix_from_flat_token_hashes(
                    flat, np.concatenate(([0], np.cumsum(counts[has]))).astype(np.uint64), r * nb, cfg.seed
                ).to_rows(),
                dtype=np.uint32,
            )
        docs = np.flatnonzero(has)
        fmt = cfg.hash_config.struct_format
        for b in range(nb):
            folder = Path(self.output_folder) / f"bucket_{b:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            recs = sorted((tuple(int(x) for x in row[b * r : (b + 1) * r]), int(d)) for row, d in zip(rows, docs))
            with open(folder / f"{rank:05d}.minhash.sig", "wb") as fh:
                for sig, d in recs:
                    fh.write(struct.pack(f"<{r}{fmt}I", *sig, d))
        if self.shingles_folder is not None:  # each document's sorted shingle set, for verify_jaccard
            sets = [np.unique(flat[off[i] : off[i + 1]]) for i in docs]
            folder = Path(self.shingles_folder)
            folder.mkdir(parents=True, exist_ok=True)
            parts = {
                "shingles": np.concatenate(sets or [np.zeros(0, np.uint64)]),
                "lengths": np.array([len(x) for x in sets], dtype=np.int64),
                "docs": docs.astype(np.uint32),
            }
            for key, arr in parts.items():
                np.save(folder / f"{rank:05d}.{key}.npy", arr)
        return iter(())


class ShardedSource(PipelineStep):
    """Task k of n gets documents k, k + n, ...; task `empty` gets none (so it hands off no file)."""

    name = "sharded memory source"

    def __init__(self, docs: list[Document], empty: int) -> None:
        super().__init__()
        self.docs, self.empty = docs, empty

    def run(self, data=None, rank: int = 0, world_size: int = 1):  # noqa: ANN001, ANN201
        if rank != self.empty:
            yield from (Document(text=d.text, id=d.id) for d in self.docs[rank::world_size])


def _corpus(c4_path: Path) -> list[Document]:
    with gzip.open(c4_path, "rb") as fh:
        base = [orjson.loads(line)["text"] for line in fh][:160]
    rng = np.random.default_rng(4)
    vocab = sorted({w for t in base for w in t.split()})
    texts = base + [edit_words(t, 0.02, rng, vocab) for t in base[:40]] + base[40:50] + SPECIAL + ["", "x"]
    return [Document(text=t, id=str(i)) for i, t in enumerate(texts)]


def _plan(tmp: Path, docs: list[Document], stage: dict, reference: bool):  # noqa: ANN202
    from curate.pipeline.plan import PlanContext, add_stages
    from curate.pipeline.stage_entries import validate_stages

    ctx = PlanContext(tasks=3, workers=1, on_error="skip", intermediate_dir=str(tmp / "work"), output_dir=str(tmp))
    ctx.add(ShardedSource(docs, empty=1))
    add_stages(ctx, validate_stages([stage]))
    jobs = ctx.finish(None)
    if reference:  # the previous kernel: the reader's documents, per-document normalization, datatrove's buckets
        sig_job = next(j for j in jobs if j.name.endswith("_signatures"))
        new = sig_job.steps[0]
        assert isinstance(new, FastSignature)
        shingles = new.shingles_folder.path if new.shingles_folder is not None else None
        sig_job.steps = [new.handoff, ReferenceSignature(new.output_folder.path, new.config, shingles)]
        bucket_job = next(j for j in jobs if j.name.endswith("_buckets"))
        fast = bucket_job.steps[0]
        bucket_job.steps = [MinhashDedupBuckets(fast.input_folder, fast.output_folder, config=fast.config)]
    return jobs


def _run(jobs) -> list[Document]:  # noqa: ANN001
    out: list[Document] = []
    for i, job in enumerate(jobs):
        for rank in range(job.tasks):
            data = None
            for step in job.steps:
                data = step(data, rank, job.tasks)
            if data is not None:
                out.extend(data) if i == len(jobs) - 1 else [None for _ in data]
    return out


@pytest.mark.parametrize(
    "stage",
    [
        {"stage": "minhash_dedup", "ngram": 2, "buckets": 6, "hashes_per_bucket": 3},
        {"stage": "minhash_dedup", "ngram": 5, "buckets": 4, "hashes_per_bucket": 2, "hash_precision": 32},
        # 0.9: some of the lightly edited copies fall below it (83 candidate pairs, 69 verified)
        {"stage": "minhash_dedup", "ngram": 2, "buckets": 6, "hashes_per_bucket": 3, "verify_jaccard": 0.9},
    ],
)
def test_stage_drops_what_the_previous_kernel_drops_across_tasks(tmp_path: Path, sample_dir: Path, stage: dict) -> None:
    """Three tasks, one of which hands off nothing (so task 2 of the signatures and filter jobs reads the main
    job's third file): the same signature files, the same candidate pairs, the same documents dropped and the
    same cluster ids as with the previous kernel's steps."""
    docs = _corpus(sample_dir / "c4-en-1k.jsonl.gz")
    runs = {}
    for kind in ("old", "new"):
        out = _run(_plan(tmp_path / kind, docs, stage, reference=kind == "old"))
        runs[kind] = {d.id: d.metadata[CLUSTER_ID] for d in out}
        sigs = sorted((tmp_path / kind / "work").rglob("*.minhash.sig"))
        runs[kind + " files"] = [(p.relative_to(tmp_path / kind).as_posix(), p.read_bytes()) for p in sigs]
        dups = sorted((tmp_path / kind / "work").rglob("*.dups"))
        runs[kind + " pairs"] = [(p.parent.name, p.read_bytes()) for p in dups]
    assert runs["new files"] == runs["old files"]
    assert runs["new pairs"] == runs["old pairs"] and any(b for _, b in runs["new pairs"])
    if "verify_jaccard" in stage:  # pairs below the Jaccard were dropped before clustering
        size = {f: sum(len(b) for d, b in runs["new pairs"] if d == f) for f in ("buckets", "verified")}
        assert 0 < size["verified"] < size["buckets"]
    assert runs["new"] == runs["old"]
    dropped = len(docs) - len(runs["new"])
    assert dropped >= 40 and any(v is not None for v in runs["new"].values())
