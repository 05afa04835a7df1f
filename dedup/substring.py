"""Find every span of >= L units that occurs at least twice within a shard (no Python loop over positions).

Definition (GneissWeb after Lee et al. 2022; it is what the brute-force oracle in the tests checks):
a unit at position p of a document is removed when p lies inside an occurrence of a sequence w,
|w| >= L, such that w occurs at least twice in the shard (occurrences lie wholly inside one
document each, never across a boundary) and
  - `keep="first"`: that occurrence is not the first occurrence of w in text order (document
    order, then position);
  - `keep="none"`:  any occurrence (every copy is removed).
Equivalent form used here: p is removed iff p lies in a window [s, s+L) whose L-gram also occurs
at some s' < s (first) / s' != s (none). (If w of length >= L occurs at s and earlier at s', the
L-window of w that contains p occurs earlier too; the converse is the case |w| = L.)

How: documents are concatenated with one separator id after each (a value the content never
uses), a suffix array is built, and adjacent suffixes sharing >= L units inside their document
are linked (`link[k]`: suffixes sa[k] and sa[k+1]); a maximal chain of links is a group = all
occurrences of one L-gram. Clipping at the document end is enough because two suffixes whose
common L-prefix passes a separator have that separator at the same offset.

Which adjacent suffixes share L units is decided without an LCP array (`_link_hashed`): every
L-window gets a 32-bit hash (a polynomial over random per-id values, computed for all windows at
once in numpy), and suffixes sa[k], sa[k+1] are candidates when their windows' hashes are equal.
Equal windows always have equal hashes, so only collisions can add a false candidate; each maximal
chain of candidates is then checked exactly by comparing its FIRST and LAST window unit by unit:
the suffixes are sorted, so the windows in between lie between those two and are equal to them
when they are equal (a chain that fails, i.e. a collision, is checked link by link). The result is
exactly Kasai's LCP >= L, at 4 bytes per unit (hashes) instead of 8 (rank + LCP), and faster; the
Kasai path stays (`method="kasai"`) as the benchmark's baseline and the tests' cross-check. Every
group member is marked as a window start, then each group's smallest position (its first
occurrence) is unmarked for `keep="first"`. Windows are merged into runs from the start mask.

Memory: past the suffix array and LCP, everything works on `chunk` entries at a time (a group or
a run crossing a chunk edge is carried over), so the only full-size arrays are the units, the
suffix array, the LCP (freed after linking) and two boolean masks; the number of repeats does not
change the peak. Positions are int64 in all arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .heap import trim_heap
from .suffix_array import lcp_array, suffix_array

Keep = Literal["first", "none"]
CHUNK = 1 << 20  # entries per step past the suffix array: the steps' temporaries (~25 bytes an entry) are at the peak


@dataclass
class Shard:
    """A shard's documents as one unit array: doc i is units[starts[i] : starts[i] + lengths[i]], then a separator."""

    units: np.ndarray
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64

    @property
    def seps(self) -> np.ndarray:
        return self.starts + self.lengths

    @classmethod
    def from_lengths(cls, units: np.ndarray, lengths: np.ndarray) -> Shard:
        lengths = np.asarray(lengths, dtype=np.int64)
        starts = np.zeros(lengths.shape[0], dtype=np.int64)
        if lengths.shape[0] > 1:
            np.cumsum(lengths[:-1] + 1, out=starts[1:])
        return cls(units, starts, lengths)


def concat(docs: Iterable[np.ndarray], sep: int, dtype: np.dtype | type, lengths: np.ndarray | None = None) -> Shard:
    """One array: each doc then `sep`. With `lengths` given, `docs` may be a generator (filled one at a time)."""
    if lengths is None:
        docs = list(docs)
        lengths = np.fromiter((d.shape[0] for d in docs), dtype=np.int64, count=len(docs))
    shard = Shard.from_lengths(np.empty(0, dtype=dtype), lengths)
    units = np.empty(int(shard.lengths.sum()) + shard.lengths.shape[0], dtype=dtype)
    units[shard.seps] = sep
    for d, s, ln in zip(docs, shard.starts.tolist(), shard.lengths.tolist()):
        assert d.shape[0] == ln
        units[s : s + ln] = d
    shard.units = units
    return shard


@dataclass
class Runs:
    """Maximal removed runs, sorted by (doc, start); offsets are in units, local to the document."""

    doc: np.ndarray
    start: np.ndarray
    end: np.ndarray
    windows: int = 0  # removal windows (repeated L-gram occurrences) before merging

    def __len__(self) -> int:
        return int(self.doc.shape[0])


def _empty() -> Runs:
    z = np.zeros(0, dtype=np.int64)
    return Runs(z, z.copy(), z.copy(), 0)


def _link(sa: np.ndarray, lcp: np.ndarray, seps: np.ndarray, L: int, chunk: int) -> np.ndarray:
    """link[k]: suffixes sa[k] and sa[k+1] share >= L units that stay inside their document."""
    n = sa.shape[0]
    link = np.zeros(n, dtype=bool)
    for a in range(0, n - 1, chunk):
        b = min(a + chunk, n - 1)
        k = np.flatnonzero(lcp[a:b] >= L)
        if k.size:
            p = sa[a + k].astype(np.int64)
            rem = seps[np.searchsorted(seps, p)] - p  # units left before the document's end
            link[a + k[rem >= L]] = True
    return link


# window hash: sum of T[u[p + j]] * B**(L - 1 - j) mod 2**64, top 32 bits kept
_B = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1
HASH_CHUNK = 1 << 14  # positions per hashing task: its ~6 temporaries stay in L2 (4x faster than 1 << 18 here)
LINK_CHUNK = 1 << 20  # suffixes per linking task (two run at once): their temporaries are at the peak
THREADS = 2


def _id_table(size: int) -> np.ndarray:
    return np.random.default_rng(0x5EED).integers(0, 2**63, size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def _powers(base: int, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) mod 2**64 (numpy's uint64 products wrap, which is the modulus wanted)."""
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def _hash_block(
    units: np.ndarray, table: np.ndarray, L: int, a: int, b: int, out: np.ndarray, pw: np.ndarray, ipw: np.ndarray
) -> None:
    """out[a:b] = hashes of the L-windows starting at a..b-1 (past the array end the units count as 0).

    With S[i] = sum of T[u[a + j]] * B**j for j < i (a prefix sum mod 2**64), the window at a + r is
    (S[r + L] - S[r]) * B**-r: B is odd, hence invertible mod 2**64, so this is exact, in ~6 passes."""
    n = units.shape[0]
    m = b - a + L - 1
    x = np.zeros(m + 1, dtype=np.uint64)
    got = min(a + m, n) - a
    np.take(table, units[a : a + got], out=x[1 : got + 1], mode="clip")  # 'raise' buffers `out`
    x[1:] *= pw[:m]
    np.cumsum(x, out=x)  # x[i] = S[i]
    w = x[L : L + b - a] - x[: b - a]
    w *= ipw[: b - a]
    out[a:b] = (w >> np.uint64(32)).astype(np.uint32)


def window_hashes(units: np.ndarray, L: int, threads: int = THREADS) -> np.ndarray:
    """32-bit hash of every L-window of `units` (native byte order); numpy releases the GIL, so `threads`
    hash blocks in parallel."""
    n = units.shape[0]
    table = _id_table(int(units.max()) + 1 if n else 1)
    out = np.empty(n, dtype=np.uint32)
    size = min(HASH_CHUNK, max(n, 1))
    pw, ipw = _powers(_B, size + L), _powers(pow(_B, -1, 1 << 64), size)
    blocks = [(a, min(a + size, n)) for a in range(0, n, size)]
    if threads > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda ab: _hash_block(units, table, L, ab[0], ab[1], out, pw, ipw), blocks))
    else:
        for a, b in blocks:
            _hash_block(units, table, L, a, b, out, pw, ipw)
    return out


def windows_equal(units: np.ndarray, a: np.ndarray, b: np.ndarray, L: int, chunk: int = 1 << 15) -> np.ndarray:
    """Exactly: units[a[i] : a[i] + L] == units[b[i] : b[i] + L]. A window running past the array's end holds
    the final separator, so it never equals one inside a document: it compares unequal here."""
    n = units.shape[0]
    fits = (b + L <= n) & (a + L <= n)
    eq = fits.copy()
    if n < L:
        return eq
    a, b = np.where(fits, a, 0), np.where(fits, b, 0)
    # every window as one opaque L-unit item (overlapping, a stride of one unit): fancy indexing copies
    # each picked window in one go, and the bytes compare as rows
    width = units.itemsize * L
    win = np.ndarray((n - L + 1,), dtype=f"V{width}", buffer=units, strides=(units.itemsize,))
    for c in range(0, a.shape[0], chunk):
        x, y = win[a[c : c + chunk]], win[b[c : c + chunk]]
        eq[c : c + chunk] &= (x.view(np.uint8).reshape(-1, width) == y.view(np.uint8).reshape(-1, width)).all(axis=1)
    return eq


def _link_hashed(
    units: np.ndarray, sa: np.ndarray, seps: np.ndarray, L: int, chunk: int, threads: int = THREADS
) -> np.ndarray:
    """link[k]: suffixes sa[k] and sa[k+1] share >= L units inside their document (see module doc)."""
    n = sa.shape[0]
    hashes = window_hashes(units, L, threads)
    link = np.zeros(n, dtype=bool)

    def part(a: int, b: int, h: np.ndarray) -> None:
        g = np.take(h, sa[a : b + 1], mode="clip")
        k = np.flatnonzero(g[:-1] == g[1:])
        if k.size:
            p = sa[a + k].astype(np.int64)
            rem = seps[np.searchsorted(seps, p)] - p  # units left before the document's end
            link[a + k[rem >= L]] = True

    step = min(chunk, LINK_CHUNK)
    blocks = [(a, min(a + step, n - 1)) for a in range(0, n - 1, step)]
    if threads > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(part, [a for a, _ in blocks], [b for _, b in blocks], [hashes] * len(blocks)))
    else:
        for a, b in blocks:
            part(a, b, hashes)
    del hashes
    # exact check, chain by chunk of chains: first vs last window of each maximal chain of candidates
    idx = np.flatnonzero(link)
    if idx.size == 0:
        return link
    brk = np.flatnonzero(np.diff(idx) != 1) + 1
    k0 = idx[np.concatenate(([0], brk))]
    k1 = idx[np.concatenate((brk - 1, [idx.size - 1]))]
    del idx, brk
    for c in range(0, k0.shape[0], chunk):
        lo, hi = k0[c : c + chunk], k1[c : c + chunk]
        ok = windows_equal(units, sa[lo].astype(np.int64), sa[hi + 1].astype(np.int64), L)
        for x, y in zip(lo[~ok].tolist(), hi[~ok].tolist()):  # a collision: check this chain link by link
            ks = np.arange(x, y + 1)
            link[ks] = windows_equal(units, sa[ks].astype(np.int64), sa[ks + 1].astype(np.int64), L)
    return link


def _mark_starts(sa: np.ndarray, link: np.ndarray, keep: Keep, chunk: int) -> np.ndarray:
    """Boolean mask over positions: the window starts to remove (every group member but the first, or all)."""
    n = sa.shape[0]
    starts = np.zeros(n, dtype=bool)
    carry = -1  # smallest position so far of a group that continues past the previous chunk (-1: none)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        ln = link[a:b]
        prev = np.empty(b - a, dtype=bool)  # link[k - 1]
        prev[0] = link[a - 1] if a else False
        prev[1:] = ln[:-1]
        member = ln | prev
        idx = np.flatnonzero(member)
        if idx.size == 0:
            continue
        pos = sa[a + idx].astype(np.int64)
        starts[pos] = True
        if keep == "none":
            continue
        opens = np.flatnonzero(~prev[idx])  # members that begin a group
        if opens.size == 0 or opens[0] != 0:  # the chunk begins inside a group carried from before
            opens = np.concatenate(([0], opens))
        mins = np.minimum.reduceat(pos, opens)
        if carry >= 0 and prev[idx[0]]:
            mins[0] = min(mins[0], carry)
        open_at_end = bool(ln[-1])  # the last group goes on into the next chunk
        closed = mins[:-1] if open_at_end else mins
        starts[closed] = False
        carry = int(mins[-1]) if open_at_end else -1
    return starts


def _runs(starts: np.ndarray, L: int, chunk: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge the windows [s, s + L) of every marked start into maximal runs (global positions)."""
    rs_all, re_all = [], []
    cur_s = cur_e = -1  # the run still open at the end of the previous chunk
    windows = 0
    for a in range(0, starts.shape[0], chunk):
        s = np.flatnonzero(starts[a : a + chunk]).astype(np.int64) + a
        if s.size == 0:
            continue
        windows += s.size
        # windows all have length L, so ends are sorted too: a run breaks where a window starts after the previous end
        brk = np.flatnonzero(s[1:] > s[:-1] + L) + 1
        rs = s[np.concatenate(([0], brk))]
        re_ = s[np.concatenate((brk - 1, [s.size - 1]))] + L
        if cur_s >= 0:
            if rs[0] <= cur_e:  # continues the open run
                rs[0] = cur_s
            else:
                rs_all.append(np.array([cur_s]))
                re_all.append(np.array([cur_e]))
        rs_all.append(rs[:-1])
        re_all.append(re_[:-1])
        cur_s, cur_e = int(rs[-1]), int(re_[-1])
    if cur_s >= 0:
        rs_all.append(np.array([cur_s]))
        re_all.append(np.array([cur_e]))
    if not rs_all:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    return np.concatenate(rs_all).astype(np.int64), np.concatenate(re_all).astype(np.int64), windows


def _to_native(shard: Shard) -> np.ndarray:
    if not shard.units.dtype.isnative:
        shard.units.byteswap(inplace=True)
        shard.units = shard.units.view(shard.units.dtype.newbyteorder("="))
    return shard.units


def duplicate_runs(
    shard: Shard, min_length: int, keep: Keep = "first", chunk: int = CHUNK, method: Literal["hash", "kasai"] = "hash"
) -> Runs:
    """Runs of units to remove so that every repeated span of >= min_length units is cut (see module doc).

    A big-endian `shard.units` (how the tokenizer writes them, ready for the byte-level suffix sort)
    is turned into native order in place once the suffix array is built. `method`: how adjacent
    suffixes sharing >= L units are found, window hashes checked exactly (default) or Kasai's LCP
    (the previous kernel, same result).
    """
    if keep not in ("first", "none"):
        raise ValueError(f"keep must be 'first' or 'none', not {keep!r}")
    L = int(min_length)
    units = shard.units
    if units.shape[0] <= L:  # a repeat (even self-overlapping) needs L + 1 units
        _to_native(shard)
        return _empty()
    sa = suffix_array(units)
    units = _to_native(shard)
    if method == "kasai":
        lcp = lcp_array(units, sa)
        link = _link(sa, lcp, shard.seps, L, chunk)
        del lcp
    else:
        link = _link_hashed(units, sa, shard.seps, L, chunk)
    trim_heap(sa.nbytes)  # the linking temporaries sit in freed heap pages: give them back before the next arrays
    if not link.any():
        return _empty()
    starts = _mark_starts(sa, link, keep, chunk)
    freed = sa.nbytes + link.nbytes
    del sa, link
    trim_heap(freed)
    rs, re_, windows = _runs(starts, L, chunk)
    if rs.size == 0:
        return _empty()
    doc = np.searchsorted(shard.seps, rs)
    base = shard.starts[doc]
    return Runs(doc.astype(np.int64), rs - base, re_ - base, windows)
