"""The rensa MinHash kernel's pieces: normalization identical to datatrove's, shingles per document."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
from curate_testing.corpora import SURROGATES, fuzz_texts
from datatrove.utils.text import simplify_text

from curate.dedup.shingles import shingle_hashes, simplify


def test_simplify_equals_datatrove_on_real_text_and_fuzz(sample_dir: Path) -> None:
    texts = []
    for name in ("c4-en-1k.jsonl.gz", "dolma-cc-2019-00140.jsonl.gz"):
        with gzip.open(sample_dir / name, "rb") as fh:
            texts += [orjson.loads(line)["text"] for line in fh]
    texts += fuzz_texts(1500, seed=5) + ["Café 12,5 € — naïve ÉCOLE\u00a0x", "\U0001D17B\U0001D165 a", ""]
    bad = [t for t in texts if simplify(t) != simplify_text(t)]
    assert not bad, f"{len(bad)} texts differ, first {bad[0][:80]!r}"
    assert all(simplify(t) == simplify_text(t) for t in SURROGATES)


def test_shingles_stay_inside_each_text() -> None:
    texts = ["a b c d", "", "a", "x y", "a b c d", "b c d a"]
    flat, off = shingle_hashes(texts, 2)
    per = [flat[off[i] : off[i + 1]] for i in range(len(texts))]
    assert [len(p) for p in per] == [3, 0, 0, 1, 3, 3]
    assert np.array_equal(per[0], per[4])  # equal texts, equal shingles
    assert set(per[0].tolist()) & set(per[5].tolist()) == set(per[0][1:].tolist())  # "b c", "c d" shared
    assert not set(per[3].tolist()) & set(per[0].tolist())


def test_mark_planes_hold_every_nonspacing_mark() -> None:
    import sys

    from curate.dedup.shingles import nonspacing_marks

    assert nonspacing_marks() == nonspacing_marks([range(sys.maxunicode + 1)])
