"""Benchmark decontamination kernel: word normalization, 64-bit n-gram hashes of many texts at once, the
eval n-gram index (exact or Bloom) and the search of a batch of documents in it.

Normalization (the same on eval items and documents, one definition: the `_lower_table`):
- A word is a maximal run of letters, digits and marks (Unicode categories L*, N*, M*). Everything else
  (punctuation P*, symbols S*, separators Z*, controls and unassigned C*) separates words: an eval
  question quoted with other punctuation, curly quotes, a line break in the middle, or a dash instead
  of a comma still matches, and "answer:" equals "answer".
- Each code point is lowercased by its simple (one to one) Unicode lowercase mapping (U+0130 "İ" -> "i");
  final sigma "ς" folds to "σ" (Python lowercases a capital sigma by its context). One code point in,
  at most one out: a word's characters are a slice of the original text, so a match maps back to exact
  character offsets (cut mode) and the whole batch normalizes through one table lookup in numpy.
- No compatibility or canonical folding (NFKC / NFC): fullwidth letters and decomposed accents stay
  distinct. Web text and benchmark files are overwhelmingly NFC; folding would break the 1:1 map above.
- Digits are kept (a changed number is a changed math answer).

Hashes: a word hashes to a polynomial over its lowercased code points (mod 2**64, odd base, computed for
the whole batch from one prefix sum), mixed; an n-gram to a polynomial over its n word hashes, mixed.
Equal normalized n-grams have equal hashes, so the index never misses one; different n-grams may collide,
so the exact index keeps every eval n-gram's location and each hash hit is checked against the words
themselves (`Matcher.verify`): exact mode has no false positives and no false negatives.

Index memory (exact): 8 bytes per distinct eval n-gram hash, 4 per eval n-gram occurrence (its
location), 2 bytes per distinct hash of prefilter bitmap (16 bits each), plus the eval items' normalized
text (kept for the verification); ~14-16 bytes per eval n-gram + the text. Bloom: `bloom_bits(n, p)` bits
per eval set (~2.4 bytes per n-gram at p = 1e-4), no text, hits unverified (false-positive rate p per
document n-gram probe).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numba
import numpy as np

__all__ = [
    "BloomIndex",
    "ExactIndex",
    "Words",
    "bloom_bits",
    "build_exact",
    "ngram_hashes",
    "words",
]

_MAX_CP = 0x110000


@cache
def _lower_table() -> np.ndarray:
    """Code point -> its normalized code point (module doc), 0 for a separator. Built once per process (~0.3 s)."""
    table = np.zeros(_MAX_CP, dtype=np.uint32)
    for cp in range(1, _MAX_CP):
        ch = chr(cp)
        if unicodedata.category(ch)[0] in "LNM":
            table[cp] = ord(ch.lower()[0])
    table[ord("ς")] = ord("σ")
    return table


def simple_normalize_char(ch: str) -> str:
    """One character's normalized form, "" for a separator: the definition `_lower_table` tabulates."""
    if unicodedata.category(ch)[0] not in "LNM":
        return ""
    low = ch.lower()[0]
    return "σ" if low == "ς" else low


@dataclass
class Words:
    """The words of a batch of texts as code-point offsets (into the texts joined by U+0000) and the
    normalized code points: for verification and character spans, one hit document at a time."""

    starts: np.ndarray  # int64, into the joined text
    ends: np.ndarray
    doc: np.ndarray  # int64: index of the text each word is in
    first: np.ndarray  # int64 [texts + 1]: index of each text's first word
    text_start: np.ndarray  # int64 [texts]: offset of each text in the joined text
    low: np.ndarray = field(repr=False)  # uint32 normalized code points of the joined text (0: separator)


def _edges(is_word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the runs of True in a bool array (edges alternate: start, end, start, ...)."""
    padded = np.zeros(is_word.shape[0] + 2, dtype=np.int8)
    padded[1:-1] = is_word
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


def words(texts: Sequence[str]) -> Words:
    """The words of `texts` with their code-point offsets (one table lookup over the batch)."""
    joined = "\x00".join(texts)  # U+0000 is a separator: no word spans two texts
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    low = _lower_table()[cps]
    starts, ends = _edges(low != 0)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    text_start = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        np.cumsum(lengths[:-1] + 1, out=text_start[1:])
    doc = np.searchsorted(text_start, starts, side="right") - 1
    first = np.searchsorted(doc, np.arange(len(texts) + 1), side="left")
    return Words(starts, ends, doc, first, text_start, low)


def word_strings(w: Words, i: int) -> list[str]:
    """The normalized words of text `i` of the batch."""
    a, z = int(w.first[i]), int(w.first[i + 1])
    return [w.low[s:e].tobytes().decode("utf-32-le", "surrogatepass") for s, e in zip(w.starts[a:z], w.ends[a:z])]


def _split(low: np.ndarray) -> list[str]:
    """The words of normalized code points (0: separator) as strings: one decode and one split."""
    spaced = np.where(low == 0, np.uint32(0x20), low)
    # no normalized word holds a character str.split() splits at: those are all separators (Z*, C*)
    return spaced.tobytes().decode("utf-32-le", "surrogatepass").split()


def normalized_words(text: str) -> list[str]:
    """One text's normalized words."""
    return word_strings(words([text]), 0)


# -- the hashing path: one compiled pass over the code points ---------------------------------------------


@numba.njit(cache=True, inline="always")
def _nb_mix(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


@numba.njit(cache=True, inline="always")
def _nb_bit(bitmap: np.ndarray, idx: np.uint64) -> bool:
    return (bitmap[idx >> np.uint64(3)] >> (idx & np.uint64(7))) & np.uint8(1) != 0


@numba.njit(cache=True)
def _scan(
    buf: np.ndarray,
    text_start: np.ndarray,
    text_end: np.ndarray,
    table: np.ndarray,
    n: int,
    bitmap: np.ndarray,
    shift: int,
    out_hash: np.ndarray,
    out_doc: np.ndarray,
    out_word: np.ndarray,
) -> int:
    """Hash every word n-gram of every text (UTF-8 `buf[text_start[d]:text_end[d]]`); with a `bitmap`, keep
    only those whose two prefilter bits are set. Returns how many were kept, or -1 when the output arrays
    were too small.

    A word's hash: FNV-1a over its normalized code points, mixed. An n-gram's: the polynomial
    sum(w_i * B**(n-1-i)) of its word hashes (rolled along the text), mixed."""
    base = np.uint64(0x9E3779B97F4A7C15)
    top = np.uint64(1)
    for _ in range(n - 1):
        top *= base
    ring = np.zeros(n, dtype=np.uint64)
    count = 0
    for d in range(text_start.shape[0]):
        rolled = np.uint64(0)
        ring[:] = 0
        nwords = 0
        h = np.uint64(0xCBF29CE484222325)
        in_word = False
        i = text_start[d]
        end = text_end[d]
        while i <= end:
            if i == end:
                c = np.uint32(0)
                i += 1
            else:
                b = np.uint32(buf[i])
                if b < 0x80:
                    cp = b
                    i += 1
                elif b < 0xE0:
                    cp = ((b & 0x1F) << 6) | (np.uint32(buf[i + 1]) & 0x3F)
                    i += 2
                elif b < 0xF0:
                    cp = ((b & 0x0F) << 12) | ((np.uint32(buf[i + 1]) & 0x3F) << 6) | (np.uint32(buf[i + 2]) & 0x3F)
                    i += 3
                else:
                    cp = (
                        ((b & 0x07) << 18)
                        | ((np.uint32(buf[i + 1]) & 0x3F) << 12)
                        | ((np.uint32(buf[i + 2]) & 0x3F) << 6)
                        | (np.uint32(buf[i + 3]) & 0x3F)
                    )
                    i += 4
                c = table[cp]
            if c != 0:
                h = (h ^ np.uint64(c)) * np.uint64(0x100000001B3)
                in_word = True
                continue
            if not in_word:
                continue
            w = _nb_mix(h)
            h = np.uint64(0xCBF29CE484222325)
            in_word = False
            slot = nwords % n
            rolled = (rolled - ring[slot] * top) * base + w
            ring[slot] = w
            nwords += 1
            if nwords < n:
                continue
            g = _nb_mix(rolled)
            if count == out_hash.shape[0]:
                return -1
            out_hash[count] = g
            out_doc[count] = d
            out_word[count] = nwords - n
            count += 1
    if bitmap.shape[0] == 0:
        return count
    # the prefilter in a loop of its own: no branch on one probe's result before the next probe's load,
    # so the processor overlaps the cache misses (the bitmap is ~2 bytes per eval n-gram: megabytes)
    width = 64 - shift
    low_mask = (np.uint64(1) << np.uint64(width)) - np.uint64(1)
    keep = np.empty(count, dtype=np.bool_)
    for i in range(count):
        g = out_hash[i]
        keep[i] = _nb_bit(bitmap, g >> np.uint64(shift)) & _nb_bit(bitmap, (g >> np.uint64(shift - width)) & low_mask)
    kept = 0
    for i in range(count):
        if keep[i]:
            out_hash[kept] = out_hash[i]
            out_doc[kept] = out_doc[i]
            out_word[kept] = out_word[i]
            kept += 1
    return kept


@dataclass
class Grams:
    """Word n-grams of a batch: hash, text index, index of the first word in that text."""

    hashes: np.ndarray  # uint64
    doc: np.ndarray  # int64
    word: np.ndarray  # int64


_NO_BITMAP = np.zeros(0, dtype=np.uint8)


def ngram_hashes(texts: Sequence[str], n: int, bitmap: np.ndarray = _NO_BITMAP, shift: int = 0) -> Grams:
    """Every word n-gram of `texts` (in no text: none spans two), or only those passing an exact index's
    prefilter `bitmap`: the n-grams worth a look in the index."""
    enc = [t.encode("utf-8", "surrogatepass") for t in texts]  # ASCII text: a copy, no per-character work
    buf = np.frombuffer(b"".join(enc), dtype=np.uint8)
    lengths = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
    end = np.cumsum(lengths)
    start = end - lengths
    cap = buf.shape[0] // 2 + 16
    while True:
        out_hash = np.empty(cap, dtype=np.uint64)
        out_doc = np.empty(cap, dtype=np.int64)
        out_word = np.empty(cap, dtype=np.int64)
        k = _scan(buf, start, end, _lower_table(), n, bitmap, shift, out_hash, out_doc, out_word)
        if k >= 0:
            return Grams(out_hash[:k], out_doc[:k], out_word[:k])
        cap *= 4


# -- the exact index -------------------------------------------------------------------------------------


@dataclass
class ExactIndex:
    """Every eval n-gram: distinct hashes sorted, each with its occurrences (item, first word) and the items'
    normalized words (joined by spaces) to verify hits against. `bitmap` prefilters probes (16 bits per hash)."""

    n: int
    keys: np.ndarray  # uint64, sorted, distinct
    occ_start: np.ndarray  # int64 [keys + 1]: occurrences of keys[i] are occ_item[occ_start[i]:occ_start[i+1]]
    occ_item: np.ndarray  # int32 global item index
    occ_word: np.ndarray  # int32 index of the n-gram's first word in its item
    item_set: np.ndarray  # int16 eval set of each item
    item_text: list[str]  # normalized words of each item, joined by " "
    bitmap: np.ndarray  # uint8
    shift: int  # a hash's bitmap bit is h >> shift

    def lookup(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of `h` are eval hashes, in order, and their key index): binary searches done in sorted order
        (numpy narrows each search by the previous one: far fewer cache misses than in random order)."""
        order = np.argsort(h)
        hs = h[order]
        pos = np.searchsorted(self.keys, hs)
        pos[pos == self.keys.shape[0]] = 0
        found = self.keys[pos] == hs if self.keys.shape[0] else np.zeros(hs.shape[0], dtype=bool)
        which, pos = order[found], pos[found]
        back = np.argsort(which)  # text order again
        return which[back], pos[back]

    @property
    def nbytes(self) -> int:
        arrays = (self.keys, self.occ_start, self.occ_item, self.occ_word, self.item_set, self.bitmap)
        return sum(a.nbytes for a in arrays) + sum(len(t) for t in self.item_text)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything but the item texts, for np.savez."""
        return {
            "keys": self.keys,
            "occ_start": self.occ_start,
            "occ_item": self.occ_item,
            "occ_word": self.occ_word,
            "item_set": self.item_set,
            "bitmap": self.bitmap,
            "shift": np.array([self.shift]),
            "n": np.array([self.n]),
        }


def _test_bit(bitmap: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return ((bitmap[idx >> np.uint64(3)] >> (idx & np.uint64(7)).astype(np.uint8)) & np.uint8(1)).astype(bool)


def _set_bits(bitmap: np.ndarray, idx: np.ndarray) -> None:
    np.bitwise_or.at(bitmap, idx >> np.uint64(3), np.uint8(1) << (idx & np.uint64(7)).astype(np.uint8))


def _bitmap(keys: np.ndarray, bits_per_key: int = 16) -> tuple[np.ndarray, int]:
    """The exact index's prefilter: a 2-hash Bloom filter of ~`bits_per_key` bits per key (at most 2**32 bits)."""
    log2 = min(32, max(16, math.ceil(math.log2(max(keys.shape[0], 1) * bits_per_key))))
    shift = 64 - log2
    bitmap = np.zeros(1 << (log2 - 3), dtype=np.uint8)
    _set_bits(bitmap, keys >> np.uint64(shift))
    _set_bits(bitmap, (keys >> np.uint64(shift - log2)) & np.uint64((1 << log2) - 1))
    return bitmap, shift


def item_ngrams(
    texts: Sequence[str], n: int, batch_chars: int = 1 << 22
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Normalized words (joined by spaces) of each of `texts`, and the hash, item and first word of every
    n-gram of theirs (in batches of about `batch_chars`)."""
    norm: list[str] = []
    hs, items, firsts = [], [], []
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (size < batch_chars or end == start):
            size += len(texts[end]) + 1
            end += 1
        batch = texts[start:end]
        w = words(batch)
        norm.extend(" ".join(word_strings(w, i)) for i in range(len(batch)))
        g = ngram_hashes(batch, n)
        hs.append(g.hashes)
        items.append(g.doc + start)
        firsts.append(g.word)
        start = end

    def cat(xs: list[np.ndarray], t: type) -> np.ndarray:
        return np.concatenate(xs).astype(t) if xs else np.zeros(0, dtype=t)

    return norm, cat(hs, np.uint64), cat(items, np.int32), cat(firsts, np.int32)


def build_exact(texts: Sequence[str], item_set: np.ndarray, n: int) -> ExactIndex:
    """The exact index of the eval items `texts` (all eval sets, concatenated; `item_set` names each one's set)."""
    norm, h, item, first = item_ngrams(texts, n)
    order = np.argsort(h, kind="stable")
    h, item, first = h[order], item[order], first[order]
    new = np.ones(h.shape[0], dtype=bool)
    new[1:] = h[1:] != h[:-1]
    keys = h[new]
    occ_start = np.append(np.flatnonzero(new), h.shape[0]).astype(np.int64)
    bitmap, shift = _bitmap(keys)
    return ExactIndex(n, keys, occ_start, item, first, np.asarray(item_set, dtype=np.int16), norm, bitmap, shift)


def load_exact(arrays: dict[str, np.ndarray], item_text: list[str]) -> ExactIndex:
    return ExactIndex(
        int(arrays["n"][0]),
        arrays["keys"],
        arrays["occ_start"],
        arrays["occ_item"],
        arrays["occ_word"],
        arrays["item_set"],
        item_text,
        arrays["bitmap"],
        int(arrays["shift"][0]),
    )


# -- Bloom ------------------------------------------------------------------------------------------------


def bloom_bits(n_keys: int, fp_rate: float) -> tuple[int, int]:
    """(log2 of the bit count, hash count) of a Bloom filter of `n_keys` keys at false-positive rate `fp_rate`:
    m = -n ln p / ln(2)**2 rounded up to a power of two, k = m/n ln 2 (at least 1)."""
    m = max(64.0, -max(n_keys, 1) * math.log(fp_rate) / math.log(2) ** 2)
    log2 = math.ceil(math.log2(m))
    k = max(1, round((1 << log2) / max(n_keys, 1) * math.log(2)))
    return log2, min(k, 30)


@dataclass
class BloomIndex:
    """A Bloom filter of one eval set's n-gram hashes (double hashing from the two halves of the 64-bit hash)."""

    bits: np.ndarray  # uint8
    log2: int
    k: int
    n_keys: int

    @classmethod
    def build(cls, keys: np.ndarray, fp_rate: float) -> BloomIndex:
        keys = np.unique(keys)
        log2, k = bloom_bits(keys.shape[0], fp_rate)
        bits = np.zeros(1 << max(log2 - 3, 0), dtype=np.uint8)
        for idx in cls._positions(keys, log2, k):
            _set_bits(bits, idx)
        return cls(bits, log2, k, int(keys.shape[0]))

    @staticmethod
    def _positions(h: np.ndarray, log2: int, k: int) -> list[np.ndarray]:
        mask = np.uint64((1 << log2) - 1)
        h1, h2 = h >> np.uint64(32), (h & np.uint64(0xFFFFFFFF)) | np.uint64(1)
        with np.errstate(over="ignore"):
            return [(h1 * np.uint64(0x9E3779B1) + np.uint64(i) * h2) & mask for i in range(k)]

    def contains(self, h: np.ndarray) -> np.ndarray:
        out = np.ones(h.shape[0], dtype=bool)
        for idx in self._positions(h, self.log2, self.k):
            out &= _test_bit(self.bits, idx)
        return out

    @property
    def expected_fp_rate(self) -> float:
        """(1 - e^(-kn/m))^k for this filter's bits and keys."""
        m = 1 << self.log2
        return (1 - math.exp(-self.k * self.n_keys / m)) ** self.k


# -- search ---------------------------------------------------------------------------------------------


@dataclass
class DocHits:
    """One document's matches: the first word of each matching n-gram and its character span in the text."""

    positions: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    position_sets: list[tuple[int, ...]] = field(default_factory=list)  # the eval sets each n-gram is in
    sets: dict[int, int] = field(default_factory=dict)  # eval set -> n-grams of the document that hit it
    items: dict[int, int] = field(default_factory=dict)  # eval item -> n-grams that hit it (exact index only)


class Searcher:
    """Finds every n-gram of a batch of documents that is an eval n-gram: exact (verified) or Bloom."""

    def __init__(self, n: int, exact: ExactIndex | None = None, blooms: Sequence[BloomIndex] = ()) -> None:
        self.n = n
        self.exact = exact
        self.blooms = list(blooms)
        self._item_words: dict[int, list[str]] = {}

    def _item(self, item: int) -> list[str]:
        got = self._item_words.get(item)
        if got is None:
            assert self.exact is not None
            got = self._item_words[item] = self.exact.item_text[item].split(" ")
        return got

    def search(self, texts: Sequence[str]) -> dict[int, DocHits]:
        """Text index -> its hits, for the texts with at least one."""
        if self.exact is not None:
            g = ngram_hashes(texts, self.n, self.exact.bitmap, self.exact.shift)
            cand, pos = self.exact.lookup(g.hashes)
            return self._verify(texts, g, cand, pos)
        g = ngram_hashes(texts, self.n)
        found = np.zeros((len(self.blooms), g.hashes.shape[0]), dtype=bool)
        for s, bloom in enumerate(self.blooms):
            found[s] = bloom.contains(g.hashes)
        out: dict[int, DocHits] = {}
        spans: dict[int, Words] = {}
        for c in np.flatnonzero(found.any(axis=0)).tolist():
            hits = self._hit(texts, spans, out, int(g.doc[c]), int(g.word[c]))
            in_sets = tuple(np.flatnonzero(found[:, c]).tolist())
            hits.position_sets.append(in_sets)
            for s in in_sets:
                hits.sets[s] = hits.sets.get(s, 0) + 1
        return out

    def _hit(self, texts: Sequence[str], cache: dict[int, Words], out: dict[int, DocHits], d: int, j: int) -> DocHits:
        w = cache.get(d)
        if w is None:
            w = cache[d] = words([texts[d]])
        hits = out.get(d)
        if hits is None:
            hits = out[d] = DocHits()
        hits.positions.append(j)
        hits.spans.append((int(w.starts[j]), int(w.ends[j + self.n - 1])))
        return hits

    def _verify(self, texts: Sequence[str], g: Grams, cand: np.ndarray, pos: np.ndarray) -> dict[int, DocHits]:
        ex = self.exact
        assert ex is not None
        out: dict[int, DocHits] = {}
        cache: dict[int, Words] = {}
        doc_words: dict[int, list[str]] = {}
        n = self.n
        for c, p in zip(cand.tolist(), pos.tolist()):
            d, j = int(g.doc[c]), int(g.word[c])
            dw = doc_words.get(d)
            if dw is None:
                w = cache[d] = words([texts[d]])
                dw = doc_words[d] = _split(w.low)
            gram = dw[j : j + n]
            sets: set[int] = set()
            items: list[int] = []
            for o in range(int(ex.occ_start[p]), int(ex.occ_start[p + 1])):
                item, first = int(ex.occ_item[o]), int(ex.occ_word[o])
                if self._item(item)[first : first + n] == gram:
                    items.append(item)
                    sets.add(int(ex.item_set[item]))
            if not items:
                continue  # a hash collision, not an eval n-gram
            hits = self._hit(texts, cache, out, d, j)
            hits.position_sets.append(tuple(sorted(sets)))
            for s in sets:
                hits.sets[s] = hits.sets.get(s, 0) + 1
            for it in dict.fromkeys(items):
                hits.items[it] = hits.items.get(it, 0) + 1
        return out


def cut_spans(spans: Sequence[tuple[int, int]], margin: int, length: int) -> list[tuple[int, int]]:
    """The matched spans widened by `margin` characters each side (within the text), overlapping ones merged."""
    out: list[tuple[int, int]] = []
    for s, e in sorted((max(0, s - margin), min(length, e + margin)) for s, e in spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def remove_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` without `spans` (sorted, disjoint); the pieces left are joined by a line break."""
    pieces, prev = [], 0
    for s, e in spans:
        pieces.append(text[prev:s])
        prev = e
    pieces.append(text[prev:])
    return "\n".join(p for p in pieces if p.strip())
