"""MinHash shingles: datatrove's text normalization, re-implemented with the same output and faster
(`simplify`), and 64-bit hashes of every word n-gram of many texts at once, in numpy (`shingle_hashes`).

Each word is hashed once (a polynomial over its bytes), each n-gram of word hashes combined and mixed
into one 64-bit shingle (no n-gram strings are built). Not datatrove's or datasketch's hash functions;
the MinHash signatures over these shingles (rensa, in stages/minhash.py) estimate the same Jaccard
similarity.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable

import numpy as np
from datatrove.utils.text import DEF_TEXT_NORM_CONFIG, NUMBERS_PATTERN, PUNCTUATION_TRANS

__all__ = ["MARK_PLANES", "nonspacing_marks", "shingle_hashes", "simplify"]

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_BW = 0x100000001B3  # odd base of the word-bytes polynomial
_BN = np.uint64(0x9E3779B97F4A7C15)  # n-gram combination


def _char_class(chars: Iterable[int]) -> str:
    """A regex character class of these code points, as ranges."""
    cps = sorted(set(chars))
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(re.escape(chr(cps[i])) + ("-" + re.escape(chr(cps[j])) if j > i else ""))
        i = j + 1
    return "[" + "".join(parts) + "]"


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


# Planes that hold any nonspacing mark (Mn): the BMP, SMP, SIP and SSP (variation selectors supplement). Planes
# 3 (CJK letters), 4-13 (unassigned) and 15-16 (private use) hold none: scanning only these takes a fifth of the
# time of all 1.1M code points (0.66 s per process); tests/test_dedup_minhash.py checks it equals the full scan.
MARK_PLANES = (range(0, 0x30000), range(0xE0000, 0xF0000))


def nonspacing_marks(planes: Iterable[range] = MARK_PLANES) -> list[int]:
    """Code points of Unicode category Mn (what datatrove's diacritics removal drops) in these planes."""
    cat = unicodedata.category
    return [c for plane in planes for c in plane if cat(chr(c)) == "Mn"]


@lru_cache(maxsize=1)
def _tables() -> tuple[bytes, re.Pattern, re.Pattern, re.Pattern]:
    """(ASCII punctuation -> space as a bytes table, all punctuation as a regex, category Mn below and above
    U+FFFF as two regexes), from the same sources as datatrove's (its PUNCTUATION_TRANS table, unicodedata's
    categories). The marks are split because `re` tests a class of BMP characters with a bitmap but walks
    a list of ranges for astral ones (20x slower on the whole class)."""
    punct = [c for c, v in PUNCTUATION_TRANS.items() if v == ord(" ")]
    ascii_table = bytes(32 if (b in punct) else b for b in range(256))
    marks = nonspacing_marks()
    return (ascii_table, re.compile(_char_class(punct)), re.compile(_char_class(c for c in marks if c < 0x10000) + "+"),
            re.compile(_char_class(c for c in marks if c >= 0x10000) + "+"))


def simplify(text: str) -> str:
    """datatrove's `simplify_text` with its default config, the same output (tested), several times faster:
    ASCII text is translated as bytes, other text by compiled character classes instead of `str.translate`
    with a dict, and the diacritics pass is one regex instead of a Python generator over every character."""
    assert not (DEF_TEXT_NORM_CONFIG.norm_weekdays or DEF_TEXT_NORM_CONFIG.norm_monthnames)
    ascii_table, punct, marks, astral_marks = _tables()
    text = NUMBERS_PATTERN.sub("0", text.lower())
    # " ".join(split()) is datatrove's `\s+` -> " " on the stripped text: str.split, str.strip and re's \s
    # all use the same Unicode whitespace test (Py_UNICODE_ISSPACE)
    if text.isascii():
        return " ".join(text.encode("ascii").translate(ascii_table).decode("ascii").split())
    text = marks.sub("", unicodedata.normalize("NFD", " ".join(punct.sub(" ", text).split())))
    if _ASTRAL.search(text):
        text = astral_marks.sub("", text)
    return text.strip()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every input bit reaches every output bit."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _powers(base: int, n: int) -> np.ndarray:
    out = np.full(n, base, dtype=np.uint64)
    out[:1] = 1
    return np.cumprod(out, dtype=np.uint64)


_BYTE_TABLE = np.random.default_rng(0xB17E).integers(1, 2**63, 256, dtype=np.uint64)


def shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of each (simplified) text, all at once in numpy.

    Returns (flat hashes, offsets): text i's shingles are flat[offsets[i] : offsets[i + 1]]. A text of
    fewer than `ngram` words has none (as in datatrove). Words are split at single spaces (a simplified
    text has no other whitespace); the texts are joined with newlines to find where each ends."""
    data = np.frombuffer("\n".join(texts).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    offsets = np.zeros(len(texts) + 1, dtype=np.uint64)
    if data.shape[0] == 0:
        return np.zeros(0, dtype=np.uint64), offsets
    cut = np.flatnonzero((data == 0x20) | (data == 0x0A))
    starts = np.concatenate(([0], cut + 1))
    ends = np.concatenate((cut, [data.shape[0]]))
    doc = np.searchsorted(np.flatnonzero(data == 0x0A), starts, side="right")
    real = ends > starts  # an empty text leaves an empty "word" between two newlines
    starts, ends, doc = starts[real], ends[real], doc[real]
    # word hash: sum of T[byte] * B**i over its bytes, from one prefix sum mod 2**64 (B odd, so B**-i exists)
    pw = _powers(_BW, data.shape[0] + 1)
    pre = np.zeros(data.shape[0] + 1, dtype=np.uint64)
    np.cumsum(np.take(_BYTE_TABLE, data) * pw[:-1], out=pre[1:])
    words = (pre[ends] - pre[starts]) * _powers(pow(_BW, -1, 1 << 64), data.shape[0] + 1)[starts]
    words += (ends - starts).astype(np.uint64)
    _mix(words)
    del pre, pw
    m = words.shape[0] - ngram + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64), offsets
    sh = words[:m].copy()
    for j in range(1, ngram):
        sh *= _BN
        sh += words[j : j + m]
    _mix(sh)
    valid = doc[ngram - 1 :] == doc[:m]  # the n-gram stays inside one text
    sh, sdoc = sh[valid], doc[:m][valid]
    np.cumsum(np.bincount(sdoc, minlength=len(texts)), out=offsets[1:])
    return sh, offsets
