"""Exact-substring dedup against a brute-force oracle on thousands of random small corpora.

The oracle is the definition itself (see dedup/substring.py): for every sequence w of >= L units
occurring at least twice in the shard (each occurrence inside one document), mark every
occurrence except the first in text order (keep=first) or every occurrence (keep=none). It
enumerates all substrings of all lengths; nothing is shared with the implementation. On text, a
character is removed iff all of its bytes are marked (token marks map to bytes through each
token's byte length), and the number of spans is the number of maximal runs of removed chars.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from datatrove.data import Document

from curate.dedup.stages.exact_substring import REMOVED_CHARS, REMOVED_SPANS, ExactSubstringDedup, ExactSubstringOptions
from curate.dedup.substring import CHUNK, concat, duplicate_runs
from curate.dedup.tokenize import get_tokenizer


def oracle_masks(docs: list[list[int]] | list[bytes], L: int, keep: str) -> list[np.ndarray]:
    occ: dict = defaultdict(list)
    for d, u in enumerate(docs):
        for s in range(len(u)):
            for e in range(s + L, len(u) + 1):
                occ[(bytes(u[s:e]) if isinstance(u, bytes) else tuple(u[s:e]))].append((d, s))
    masks = [np.zeros(len(u), dtype=bool) for u in docs]
    for w, where in occ.items():
        if len(where) < 2:
            continue
        for j, (d, s) in enumerate(where):  # `where` is in text order: documents in order, positions ascending
            if keep == "none" or j > 0:
                masks[d][s : s + len(w)] = True
    return masks


def runs_to_masks(lengths: list[int], runs) -> list[np.ndarray]:
    masks = [np.zeros(n, dtype=bool) for n in lengths]
    for d, s, e in zip(runs.doc.tolist(), runs.start.tolist(), runs.end.tolist()):
        assert not masks[d][s:e].any(), "runs must be disjoint"
        assert not (s > 0 and masks[d][s - 1]) and not (e < lengths[d] and masks[d][e]), "runs must be maximal"
        masks[d][s:e] = True
    return masks


def random_unit_corpus(rng: np.random.Generator) -> list[list[int]]:
    alpha = int(rng.integers(1, 5))
    docs: list[list[int]] = []
    for _ in range(int(rng.integers(0, 7))):
        kind = rng.random()
        n = int(rng.integers(0, 25))
        if kind < 0.1 and docs:  # whole-document duplicate
            docs.append(list(docs[int(rng.integers(len(docs)))]))
        elif kind < 0.2:  # self-overlapping run
            docs.append([int(rng.integers(alpha))] * n)
        else:
            doc = rng.integers(0, alpha, n).tolist()
            if docs and rng.random() < 0.6 and n:  # planted repeat from an earlier doc, maybe at a boundary
                src = docs[int(rng.integers(len(docs)))]
                if src:
                    a = int(rng.integers(len(src)))
                    b = int(rng.integers(a, len(src) + 1))
                    at = int(rng.choice([0, n, int(rng.integers(n + 1))]))
                    doc = doc[:at] + src[a:b] + doc[at:]
            docs.append(doc)
    return docs


def _colliding_hashes(units: np.ndarray, L: int, threads: int = 2) -> np.ndarray:
    """A window hash where most windows collide (only the first unit counts): every chain of candidates
    then mixes different windows, so the exact check and its link-by-link fallback decide everything."""
    return (units.astype(np.uint32) & 1) if units.shape[0] else np.zeros(0, np.uint32)


@pytest.mark.parametrize("keep", ["first", "none"])
def test_runs_match_oracle_on_random_unit_corpora(keep: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with tiny chunks (groups and runs carried across chunk edges), big-endian units (the
    tokenizer's layout, byte-swapped in place after the sort), Kasai's LCP instead of window hashes,
    and window hashes that collide almost always: every variant must equal the oracle."""
    import curate.dedup.substring as substring

    rng = np.random.default_rng(1234 if keep == "first" else 4321)
    disagreements = 0
    real_hashes = substring.window_hashes
    for trial in range(1000):  # x 4 variants each
        docs = random_unit_corpus(rng)
        L = int(rng.integers(1, 7))
        want = oracle_masks(docs, L, keep)
        chunk = int(rng.choice([1, 2, 3, 5, 8]))
        variants = []
        for dtype, ch, method, hashes in [
            (np.uint16, CHUNK, "hash", real_hashes),
            (np.dtype(">u2"), chunk, "hash", real_hashes),
            (np.uint16, chunk, "kasai", real_hashes),
            (np.uint16, chunk, "hash", _colliding_hashes),
        ]:
            monkeypatch.setattr(substring, "window_hashes", hashes)
            shard = concat([np.asarray(d, dtype=np.uint16) for d in docs], 60000, dtype)
            variants.append(duplicate_runs(shard, L, keep, chunk=ch, method=method))
            assert shard.units.dtype.isnative
        for runs in variants:
            got = runs_to_masks([len(d) for d in docs], runs)
            if not all(np.array_equal(g, w) for g, w in zip(got, want)):
                disagreements += 1
                if disagreements == 1:
                    print("first disagreement:", trial, docs, L, keep, "chunk", chunk)
        assert len({v.windows for v in variants}) == 1
    assert disagreements == 0


def test_runs_cover_self_overlap_and_first_copy() -> None:
    # "aaaaaa" with L=2: every 2-gram after position 0 repeats an earlier one -> only position 0 stays
    shard = concat([np.array([7] * 6, dtype=np.uint16)], 9, np.uint16)
    r = duplicate_runs(shard, 2, "first")
    assert (r.doc.tolist(), r.start.tolist(), r.end.tolist()) == ([0], [1], [6])
    # first copy is the first in TEXT order, not suffix-array order: "zz..." sorts after "ab.."
    docs = [
        np.array([5, 5, 5, 1, 2, 3], dtype=np.uint16),
        np.array([1, 2, 3, 4], dtype=np.uint16),
        np.array([5, 5, 5, 0], dtype=np.uint16),
    ]
    r = duplicate_runs(concat(docs, 9, np.uint16), 3, "first")
    assert list(zip(r.doc.tolist(), r.start.tolist(), r.end.tolist())) == [(1, 0, 3), (2, 0, 3)]
    r = duplicate_runs(concat(docs, 9, np.uint16), 3, "none")
    assert list(zip(r.doc.tolist(), r.start.tolist(), r.end.tolist())) == [(0, 0, 6), (1, 0, 3), (2, 0, 3)]
    # never across a boundary: "12|34" and "1234" share no 4-gram inside one document
    docs = [
        np.array([1, 2], dtype=np.uint16),
        np.array([3, 4], dtype=np.uint16),
        np.array([1, 2, 3, 4], dtype=np.uint16),
    ]
    assert len(duplicate_runs(concat(docs, 9, np.uint16), 3, "first")) == 0


# ------------------------------------------------------------------ text level, through the step

ALPHABETS = ["ab", "a ", "ab ", "aé", "é€", "a𝄞 ", "xy\n", "日本 ", "ab.,"]


def random_text_corpus(rng: np.random.Generator) -> list[str]:
    alpha = ALPHABETS[int(rng.integers(len(ALPHABETS)))]
    docs: list[str] = []
    for _ in range(int(rng.integers(0, 6))):
        n = int(rng.integers(0, 14))
        r = rng.random()
        if r < 0.1 and docs:
            docs.append(docs[int(rng.integers(len(docs)))])
        elif r < 0.2:
            docs.append(alpha[0] * n)
        else:
            t = "".join(alpha[i] for i in rng.integers(0, len(alpha), n))
            if docs and rng.random() < 0.6:
                src = docs[int(rng.integers(len(docs)))]
                a = int(rng.integers(len(src) + 1))
                b = int(rng.integers(a, len(src) + 1))
                at = int(rng.integers(len(t) + 1))
                t = t[:at] + src[a:b] + t[at:]
            docs.append(t)
    return docs


def oracle_text(texts: list[str], L: int, keep: str, units: str) -> list[tuple[str, int, int]]:
    raw = [t.encode() for t in texts]
    if units == "bytes":
        byte_masks = oracle_masks(raw, L, keep)
    else:
        tok = get_tokenizer()
        ids = [tok.encode(t).tolist() for t in texts]
        tmasks = oracle_masks(ids, L, keep)
        byte_masks = [
            np.repeat(m, tok.byte_len[np.asarray(i, dtype=np.int64)]) if i else np.zeros(0, bool)
            for m, i in zip(tmasks, ids)
        ]
    out = []
    for t, bm in zip(texts, byte_masks):
        kept, removed, spans, pos, prev_removed = [], 0, 0, 0, False
        for ch in t:
            n = len(ch.encode())
            gone = bool(bm[pos : pos + n].all())
            pos += n
            if gone:
                removed += 1
                spans += not prev_removed
            else:
                kept.append(ch)
            prev_removed = gone
        out.append(("".join(kept), spans, removed))
    return out


@pytest.mark.parametrize("units", ["bytes", "tokens"])
@pytest.mark.parametrize("keep", ["first", "none"])
def test_step_matches_oracle_on_random_texts(units: str, keep: str) -> None:
    rng = np.random.default_rng({"bytes": 7, "tokens": 11}[units] + (keep == "none"))
    disagreements = changed = partial = 0
    for trial in range(1500):
        texts = random_text_corpus(rng)
        L = int(rng.integers(1, 8 if units == "bytes" else 5))
        opts = ExactSubstringOptions(units=units, min_length=L, keep=keep, shard_bytes=10**8, threads=1)
        step = ExactSubstringDedup(opts)
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
        out = list(step(iter(docs)))
        got = [(d.text, d.metadata[REMOVED_SPANS], d.metadata[REMOVED_CHARS]) for d in out]
        want = oracle_text(texts, L, keep, units)
        changed += any(w[2] for w in want)
        partial += any(w[2] == 0 and w[1] == 0 and w[0] != t for w, t in zip(want, texts))  # never: sanity
        if got != want:
            disagreements += 1
            if disagreements == 1:
                print("first disagreement:", trial, units, keep, L, texts, got, want)
    assert disagreements == 0
    assert changed > 600, "the generator must produce corpora with repeats"
    assert partial == 0
