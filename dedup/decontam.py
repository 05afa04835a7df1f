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
  character offsets (cut mode) and one table lookup per character normalizes.
- No compatibility or canonical folding (NFKC / NFC): fullwidth letters and decomposed accents stay
  distinct. Web text and benchmark files are overwhelmingly NFC; folding would break the 1:1 map above.
- Digits are kept (a changed number is a changed math answer).

Hashes (`_scan`, compiled with numba: one pass over a batch's UTF-8, ~3.5 ns per byte): a word hashes to
FNV-1a over its normalized code points, mixed (splitmix64's finalizer); an n-gram to the polynomial of its n
word hashes (odd base, mod 2**64, rolled along the text), mixed. Equal normalized n-grams have equal hashes,
so the index never misses one; different n-grams may collide, so the exact index keeps every eval n-gram's
location and each hash hit is compared word by word with the eval item (`_same_words`): exact mode has no
false positives and no false negatives (tests/dedup/test_decontaminate.py checks it against a brute-force
oracle).

Exact index memory, per eval n-gram: 8 bytes (its hash), 4 + 4 (item, offset of its words), 4 (offset of its
hash's occurrences), 2 (prefilter: 16 bits per hash, two set in one 64-bit word, ~1-2% of other n-grams
pass to the binary search): ~23 bytes, plus the eval items' normalized UTF-8 (~1 byte per character).
Offsets are 64-bit beyond 4 GiB of eval text. Bloom index (`index: bloom`): -ln(p) / ln(2)**2 bits per eval
n-gram rounded up to a power of two per eval set (~3.6-7 bytes at p = 1e-6), no text; hits are unverified,
each document n-gram a false hit with probability <= p (`BloomIndex.expected_fp_rate`, measured in the tests).
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
    "DocHits",
    "ExactIndex",
    "Searcher",
    "bloom_bits",
    "build_exact",
    "cut_spans",
    "item_ngrams",
    "ngram_hashes",
    "normalized",
    "remove_spans",
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


def normalized(texts: Sequence[str]) -> list[str]:
    """Each text's normalized words joined by single spaces (one table lookup and one decode for the batch)."""
    joined = "\n".join(texts)
    low = _lower_table()[np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)]
    spaced = np.where(low == 0, np.uint32(0x20), low)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    spaced[np.cumsum(lengths + 1)[:-1] - 1] = 0x0A  # the joins: no normalized character is a line break
    # no normalized word holds a character str.split() splits at: those are all separators (Z*, C*)
    return [" ".join(t.split()) for t in spaced.tobytes().decode("utf-32-le", "surrogatepass").split("\n")]


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
def _nb_maybe(bitmap: np.ndarray, h: np.uint64, shift: int) -> bool:
    """The prefilter: a Bloom filter of two bits in one 64-bit word (one cache miss per probe): the word by the
    hash's top bits, the bits by its lowest 12."""
    mask = (np.uint64(1) << (h & np.uint64(63))) | (np.uint64(1) << ((h >> np.uint64(6)) & np.uint64(63)))
    return (bitmap[h >> np.uint64(shift)] & mask) == mask


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
    out_start: np.ndarray,
    out_end: np.ndarray,
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
    ring_start = np.zeros(n, dtype=np.int64)  # byte offset of each word of the window
    ascii_table = table[:128].copy()  # small enough to stay in L1
    count = 0
    for d in range(text_start.shape[0]):
        rolled = np.uint64(0)
        ring[:] = 0
        slot = 0
        nwords = 0
        h = np.uint64(0xCBF29CE484222325)
        in_word = False
        word_start = 0
        i = text_start[d]
        end = text_end[d]
        while i <= end:
            at = i
            if i == end:  # past the text: a separator that ends its last word
                c = np.uint32(0)
                i += 1
            elif buf[i] < 0x80:
                c = ascii_table[buf[i]]
                i += 1
            else:
                b = np.uint32(buf[i])
                if b < 0xE0:
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
                if not in_word:
                    word_start = at
                    in_word = True
                continue
            if not in_word:
                continue
            w = _nb_mix(h)
            h = np.uint64(0xCBF29CE484222325)
            in_word = False
            rolled = (rolled - ring[slot] * top) * base + w
            ring[slot] = w
            ring_start[slot] = word_start
            slot = slot + 1 if slot + 1 < n else 0  # not nwords % n: an integer division per word
            nwords += 1
            if nwords < n:
                continue
            g = _nb_mix(rolled)
            if count == out_hash.shape[0]:
                return -1
            out_hash[count] = g
            out_doc[count] = d
            out_word[count] = nwords - n
            out_start[count] = ring_start[slot]  # the window's oldest word: the slot written next
            out_end[count] = at
            count += 1
    if bitmap.shape[0] == 0:
        return count
    # the prefilter in a loop of its own: no branch on one probe's result before the next probe's load,
    # so the processor overlaps the cache misses (the bitmap is ~2 bytes per eval n-gram: megabytes)
    keep = np.empty(count, dtype=np.bool_)
    for i in range(count):
        keep[i] = _nb_maybe(bitmap, out_hash[i], shift)
    kept = 0
    for i in range(count):
        if keep[i]:
            out_hash[kept] = out_hash[i]
            out_doc[kept] = out_doc[i]
            out_word[kept] = out_word[i]
            out_start[kept] = out_start[i]
            out_end[kept] = out_end[i]
            kept += 1
    return kept


@dataclass
class Grams:
    """Word n-grams of a batch: hash, text, first word's index in the text, UTF-8 byte span in `buf`."""

    hashes: np.ndarray  # uint64
    doc: np.ndarray  # int64
    word: np.ndarray  # int64
    start: np.ndarray  # int64: first byte of the n-gram's first word in `buf`
    end: np.ndarray  # int64: end of its last word
    buf: np.ndarray  # uint8: the batch's texts in UTF-8, one after the other
    text_start: np.ndarray  # int64: where each text starts in `buf`
    text_end: np.ndarray

    def char_offsets(self, d: int, byte_offsets: np.ndarray) -> np.ndarray:
        """Character offsets in text `d` of ascending byte offsets (into `buf`) inside it."""
        return _char_offsets(self.buf, int(self.text_start[d]), byte_offsets)


@numba.njit(cache=True)
def _char_offsets(buf: np.ndarray, start: int, offsets: np.ndarray) -> np.ndarray:
    """Characters (UTF-8 lead bytes) from `start` to each of the ascending `offsets`."""
    out = np.empty(offsets.shape[0], dtype=np.int64)
    i, chars = start, 0
    for k in range(offsets.shape[0]):
        while i < offsets[k]:
            chars += (buf[i] & 0xC0) != 0x80
            i += 1
        out[k] = chars
    return out


_NO_BITMAP = np.zeros(0, dtype=np.uint64)


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
        out = _scratch(cap)
        k = _scan(buf, start, end, _lower_table(), n, bitmap, shift, *out)
        if k >= 0:
            hashes, doc, word, first, last = (o[:k].copy() for o in out)
            return Grams(hashes, doc, word, first, last, buf, start, end)
        cap *= 4


_SCRATCH: list[np.ndarray] = []


def _scratch(cap: int) -> list[np.ndarray]:
    """The scan's output arrays, kept from batch to batch (fresh ones would page-fault on every 4 KiB the scan
    writes, in every batch)."""
    if not _SCRATCH or _SCRATCH[0].shape[0] < cap:
        _SCRATCH[:] = [np.empty(cap, dtype=np.uint64)] + [np.empty(cap, dtype=np.int64) for _ in range(4)]
    return _SCRATCH


@numba.njit(cache=True)
def _next_cp(buf: np.ndarray, i: int) -> tuple[np.uint32, int]:
    b = np.uint32(buf[i])
    if b < 0x80:
        return b, i + 1
    if b < 0xE0:
        return ((b & 0x1F) << 6) | (np.uint32(buf[i + 1]) & 0x3F), i + 2
    if b < 0xF0:
        return ((b & 0x0F) << 12) | ((np.uint32(buf[i + 1]) & 0x3F) << 6) | (np.uint32(buf[i + 2]) & 0x3F), i + 3
    cp = ((b & 0x07) << 18) | ((np.uint32(buf[i + 1]) & 0x3F) << 12) | ((np.uint32(buf[i + 2]) & 0x3F) << 6)
    return cp | (np.uint32(buf[i + 3]) & 0x3F), i + 4


@numba.njit(cache=True)
def _same_words(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    blob: np.ndarray,
    blob_starts: np.ndarray,
    table: np.ndarray,
    n: int,
) -> np.ndarray:
    """For each pair k: are the n words of the text from `starts[k]` (raw UTF-8, normalized here; the text
    ends at `ends[k]`) the n words of `blob` from `blob_starts[k]` (normalized words, one space between)?"""
    out = np.zeros(starts.shape[0], dtype=np.bool_)
    for k in range(starts.shape[0]):
        i, end, j = starts[k], ends[k], blob_starts[k]
        words, in_word, same = 0, True, True
        while True:
            c = np.uint32(0)
            if i < end:
                cp, i = _next_cp(buf, i)
                c = table[cp]
            elif not in_word:
                same = False  # the text ended before n words
                break
            if c == 0:
                if in_word:
                    if j < blob.shape[0] and blob[j] != 0x20:
                        same = False  # the blob's word goes on
                        break
                    words += 1
                    if words == n:
                        break
                    j += 1
                    in_word = False
                continue
            in_word = True
            if j >= blob.shape[0]:
                same = False
                break
            bc, j = _next_cp(blob, j)
            if bc != c:
                same = False
                break
        out[k] = same
    return out


# -- the exact index -------------------------------------------------------------------------------------


@dataclass
class ExactIndex:
    """Every eval n-gram: distinct hashes sorted, each with its occurrences (item, where in `blob`) and the
    items' normalized words to verify hits against. `bitmap` prefilters probes (16 bits per hash)."""

    n: int
    keys: np.ndarray  # uint64, sorted, distinct
    occ_start: np.ndarray  # uint32 / int64 [keys + 1]: occurrences of keys[i] are occ_item[occ_start[i]:occ_start[i+1]]
    occ_item: np.ndarray  # int32 global item index
    occ_byte: np.ndarray  # uint32 / int64 offset in `blob` of the n-gram's first word
    item_set: np.ndarray  # int16 eval set of each item
    blob: np.ndarray  # uint8: every item's normalized words in UTF-8, one space between words and items
    bitmap: np.ndarray  # uint64 words of the prefilter (`_nb_maybe`)
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
        arrays = (self.keys, self.occ_start, self.occ_item, self.occ_byte, self.item_set, self.blob, self.bitmap)
        return sum(a.nbytes for a in arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything, for np.savez."""
        return {
            "keys": self.keys,
            "occ_start": self.occ_start,
            "occ_item": self.occ_item,
            "occ_byte": self.occ_byte,
            "item_set": self.item_set,
            "blob": self.blob,
            "bitmap": self.bitmap,
            "shift": np.array([self.shift]),
            "n": np.array([self.n]),
        }


def _set_bits(bitmap: np.ndarray, idx: np.ndarray) -> None:
    np.bitwise_or.at(bitmap, idx >> np.uint64(3), np.uint8(1) << (idx & np.uint64(7)).astype(np.uint8))


def _bitmap(keys: np.ndarray, bits_per_key: int = 16) -> tuple[np.ndarray, int]:
    """The exact index's prefilter (`_nb_maybe`): 64-bit words, ~`bits_per_key` bits per key, two set per key."""
    log2_words = min(40, max(4, math.ceil(math.log2(max(keys.shape[0], 1) * bits_per_key / 64))))
    shift = 64 - log2_words
    bitmap = np.zeros(1 << log2_words, dtype=np.uint64)
    one = np.uint64(1)
    masks = (one << (keys & np.uint64(63))) | (one << ((keys >> np.uint64(6)) & np.uint64(63)))
    np.bitwise_or.at(bitmap, keys >> np.uint64(shift), masks)
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
        norm.extend(normalized(batch))
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
    blob = np.frombuffer(" ".join(norm).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    # every word's first byte; an item's words are consecutive, so its j-th word is item_first[item] + j
    is_start = blob != 0x20
    is_start[1:] &= blob[:-1] == 0x20
    word_starts = np.flatnonzero(is_start)
    item_bytes = np.fromiter((len(t.encode("utf-8", "surrogatepass")) + 1 for t in norm), np.int64, len(norm))
    item_first = np.searchsorted(word_starts, np.cumsum(item_bytes) - item_bytes)
    occ_byte = word_starts[item_first[item] + first] if item.shape[0] else np.zeros(0, dtype=np.int64)
    order = np.argsort(h, kind="stable")
    h, item, occ_byte = h[order], item[order], occ_byte[order]
    new = np.ones(h.shape[0], dtype=bool)
    new[1:] = h[1:] != h[:-1]
    keys = h[new]
    occ_start: np.ndarray = np.append(np.flatnonzero(new), h.shape[0]).astype(_offset_type(h.shape[0]))
    bitmap, shift = _bitmap(keys)
    sets = np.asarray(item_set, dtype=np.int16)
    return ExactIndex(n, keys, occ_start, item, occ_byte.astype(_offset_type(blob.shape[0])), sets, blob, bitmap, shift)


def _offset_type(limit: int) -> type[np.unsignedinteger] | type[np.signedinteger]:
    """uint32 offsets while they fit (4 bytes per eval n-gram saved twice), int64 beyond 4 GiB."""
    return np.uint32 if limit < 2**32 else np.int64


def load_exact(arrays: dict[str, np.ndarray]) -> ExactIndex:
    return ExactIndex(
        int(arrays["n"][0]),
        arrays["keys"],
        arrays["occ_start"],
        arrays["occ_item"],
        arrays["occ_byte"],
        arrays["item_set"],
        arrays["blob"],
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
        return _bloom_contains(self.bits, self.log2, self.k, h)

    @property
    def expected_fp_rate(self) -> float:
        """(1 - e^(-kn/m))^k for this filter's bits and keys."""
        m = 1 << self.log2
        return (1 - math.exp(-self.k * self.n_keys / m)) ** self.k


@numba.njit(cache=True)
def _bloom_contains(bits: np.ndarray, log2: int, k: int, h: np.ndarray) -> np.ndarray:
    """`BloomIndex._positions`' bits, tested per hash until one is unset."""
    mask = np.uint64((1 << log2) - 1)
    out = np.empty(h.shape[0], dtype=np.bool_)
    for j in range(h.shape[0]):
        h1, h2 = h[j] >> np.uint64(32), (h[j] & np.uint64(0xFFFFFFFF)) | np.uint64(1)
        hit = True
        for i in range(k):
            idx = (h1 * np.uint64(0x9E3779B1) + np.uint64(i) * h2) & mask
            if (bits[idx >> np.uint64(3)] >> (idx & np.uint64(7))) & np.uint8(1) == 0:
                hit = False
                break
        out[j] = hit
    return out


# -- search ---------------------------------------------------------------------------------------------


@dataclass
class DocHits:
    """One document's matches: the first word of each matching n-gram and its character span in the text."""

    positions: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # characters, in the text searched
    position_sets: list[tuple[int, ...]] = field(default_factory=list)  # the eval sets each n-gram is in
    sets: dict[int, int] = field(default_factory=dict)  # eval set -> n-grams of the document that hit it
    items: dict[int, int] = field(default_factory=dict)  # eval item -> n-grams that hit it (exact index only)


class Searcher:
    """Finds every n-gram of a batch of documents that is an eval n-gram: exact (verified) or Bloom."""

    def __init__(self, n: int, exact: ExactIndex | None = None, blooms: Sequence[BloomIndex] = ()) -> None:
        self.n = n
        self.exact = exact
        self.blooms = list(blooms)

    def search(self, texts: Sequence[str]) -> dict[int, DocHits]:
        """Text index -> its hits, for the texts with at least one."""
        if self.exact is not None:
            return self._exact(texts, self.exact)
        g = ngram_hashes(texts, self.n)
        found = np.zeros((len(self.blooms), g.hashes.shape[0]), dtype=bool)
        for s, bloom in enumerate(self.blooms):
            found[s] = bloom.contains(g.hashes)
        hit = np.flatnonzero(found.any(axis=0))
        sets = [tuple(np.flatnonzero(found[:, c]).tolist()) for c in hit.tolist()]
        return self._collect(g, hit, sets, [()] * hit.shape[0])

    def _exact(self, texts: Sequence[str], ex: ExactIndex) -> dict[int, DocHits]:
        g = ngram_hashes(texts, self.n, ex.bitmap, ex.shift)
        cand, pos = ex.lookup(g.hashes)
        # every (candidate, occurrence of its hash) pair, compared word by word
        lo = ex.occ_start[pos].astype(np.int64)
        count = ex.occ_start[pos + 1].astype(np.int64) - lo
        pair_c = np.repeat(cand, count)
        pair_o = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        same = _same_words(
            g.buf,
            g.start[pair_c],
            g.text_end[g.doc[pair_c]],
            ex.blob,
            ex.occ_byte[pair_o].astype(np.int64),
            _lower_table(),
            self.n,
        )
        pair_c, pair_o = pair_c[same], pair_o[same]  # the rest: 64-bit hash collisions
        hit, first = np.unique(pair_c, return_index=True)
        bounds = np.append(first, pair_c.shape[0]).tolist()
        items_of = ex.occ_item[pair_o]
        set_of = ex.item_set[items_of]
        sets, items = [], []
        for k in range(hit.shape[0]):
            a, z = bounds[k], bounds[k + 1]
            sets.append(tuple(sorted(set(set_of[a:z].tolist()))))
            items.append(tuple(dict.fromkeys(items_of[a:z].tolist())))
        return self._collect(g, hit, sets, items)

    def _collect(
        self, g: Grams, hit: np.ndarray, sets: list[tuple[int, ...]], items: list[tuple[int, ...]]
    ) -> dict[int, DocHits]:
        out: dict[int, DocHits] = {}
        if hit.shape[0] == 0:
            return out
        docs = g.doc[hit]
        change = np.flatnonzero(np.diff(docs)) + 1
        for a, z in zip([0, *change.tolist()], [*change.tolist(), hit.shape[0]]):
            d = int(docs[a])
            rows = hit[a:z]
            starts = g.char_offsets(d, g.start[rows]).tolist()
            ends = g.char_offsets(d, g.end[rows]).tolist()
            hits = out[d] = DocHits(g.word[rows].tolist(), list(zip(starts, ends)), sets[a:z])
            for k in range(a, z):
                for s in sets[k]:
                    hits.sets[s] = hits.sets.get(s, 0) + 1
                for it in items[k]:
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


CUT_BY = "\n"  # what replaces a cut span: the text either side never fuses into one word or line


def remove_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` with each of `spans` (sorted, disjoint) replaced by a line break."""
    pieces, prev = [], 0
    for s, e in spans:
        pieces.append(text[prev:s])
        prev = e
    pieces.append(text[prev:])
    return CUT_BY.join(pieces)
