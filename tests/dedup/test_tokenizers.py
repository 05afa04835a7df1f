"""Which GPT-2 tokenizer exact-substring dedup uses: the fastest one whose ids equal HF `tokenizers`.

Every installed candidate (dedup/tokenize.py SPEED_ORDER: fastokens, tokie, kitoken, tiktoken) is
compared with HF `tokenizers` (special-token text as ordinary text) on a seeded Unicode fuzz and on
real documents of the bundled sample; the default engine must be the first candidate in speed order
that agrees on all of it. The whole 100 MB benchmark corpus is compared by
scripts/bench/esd_tokenizers.py (too slow for a test: HF takes ~30 s on it).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pytest
from curate_testing.corpora import SURROGATES, fuzz_texts

from curate.dedup.tokenize import SPEED_ORDER, UnitTokenizer, candidate_encoder, candidate_installed


@pytest.fixture(scope="module")
def texts(sample_dir: Path) -> list[str]:
    real = []
    for name in ("c4-en-1k.jsonl.gz", "dolma-cc-2019-00140.jsonl.gz"):
        with gzip.open(sample_dir / name, "rb") as fh:
            real += [orjson.loads(line)["text"] for line in fh][:250]
    return fuzz_texts(1500, seed=3) + real


@pytest.fixture(scope="module")
def reference(texts: list[str]) -> list[list[int]]:
    return [a.tolist() for a in candidate_encoder("tokenizers")(texts)]


def agrees(name: str, texts: list[str], reference: list[list[int]]) -> tuple[bool, str]:
    enc = candidate_encoder(name)
    got = [a.tolist() for a in enc(texts)]
    bad = [i for i, (g, r) in enumerate(zip(got, reference)) if g != r]
    if bad:
        return False, f"{len(bad)} of {len(texts)} texts differ, first {texts[bad[0]][:60]!r}"
    for t in SURROGATES:  # not valid text: HF refuses it, and so must the candidate (the step never tokenizes it)
        try:
            enc([t])
        except (UnicodeEncodeError, TypeError, ValueError):
            continue
        return False, f"accepted lone surrogates {t!r}"
    return True, ""


def test_fuzz_covers_what_it_claims(texts: list[str]) -> None:
    joined = "".join(texts)
    assert "<|endoftext|>" in joined and "\u0301" in joined and "\x00" in joined and "👩\u200d💻" in joined
    assert any(ord(c) >= 0x10000 for c in joined) and any(0xAC00 <= ord(c) <= 0xD7A3 for c in joined)
    for t in SURROGATES:  # the reference itself refuses lone surrogates
        with pytest.raises((TypeError, UnicodeEncodeError)):
            candidate_encoder("tokenizers")([t])


def test_default_engine_is_the_fastest_candidate_that_agrees(texts, reference) -> None:
    results = {}
    for name in SPEED_ORDER:
        if candidate_installed(name):
            results[name] = agrees(name, texts, reference)
            print(f"{name}: {'agrees' if results[name][0] else 'differs: ' + results[name][1]}")
    assert results.get("tiktoken", (False,))[0], "tiktoken (the fallback) must agree"
    chosen = next(n for n in SPEED_ORDER if n in results and results[n][0])
    assert UnitTokenizer().engine == chosen


@pytest.mark.skipif(not candidate_installed("fastokens"), reason="fastokens not installed (tiktoken is the fallback)")
def test_fastokens_engine_shard_layout_and_fallback(texts) -> None:
    """The engine's shard array (ids + a separator after each text) equals text-by-text encoding, and
    the tiktoken engine gives the same arrays."""
    fast, slow = UnitTokenizer(engine="fastokens"), UnitTokenizer(engine="tiktoken")
    units, lengths = fast.encode_shard(texts, sum(len(t.encode()) for t in texts) + len(texts))
    units2, lengths2 = slow.encode_shard(texts, sum(len(t.encode()) for t in texts) + len(texts))
    assert np.array_equal(units, units2) and np.array_equal(lengths, lengths2)
    assert all(int(fast.byte_len[a].sum()) == len(t.encode()) for a, t in zip(fast.encode_batch(texts), texts))
    assert fast.sep_id == slow.sep_id == 50257 and np.array_equal(fast.byte_len, slow.byte_len)


@pytest.mark.skipif(not candidate_installed("fastokens"), reason="fastokens not installed (tiktoken is the fallback)")
def test_fastokens_let_go_past_the_reload_threshold_gives_the_same_ids(texts, monkeypatch: pytest.MonkeyPatch) -> None:
    """The word-cache bound (core/fastokens.py): `release()` after a shard keeps a tokenizer that has encoded
    fewer than RELOAD_CHARS characters, lets it go at the threshold; the fresh one gives the same ids."""
    import curate.core.fastokens as core_fastokens

    half = texts[: len(texts) // 2]
    monkeypatch.setattr(core_fastokens, "RELOAD_CHARS", sum(map(len, texts)))
    tok = UnitTokenizer(engine="fastokens")
    room = sum(len(t.encode()) for t in texts) + len(texts)
    a = tok.encode_shard(half, room)
    tok.release()
    b = tok.encode_shard(texts[len(half) :], room)
    tok.release()
    assert tok._fast.loads == 1 and tok._fast._tok is None  # kept below the threshold, let go once past it
    c = tok.encode_shard(half, room)
    assert tok._fast.loads == 2 and all(np.array_equal(x, y) for x, y in zip(a, c))
    whole = UnitTokenizer(engine="fastokens").encode_shard(texts, room)
    assert np.array_equal(np.concatenate([a[0], b[0]]), whole[0])
