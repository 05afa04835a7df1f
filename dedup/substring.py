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
uses), a suffix array + Kasai LCP is built, and adjacent suffixes sharing >= L units inside their
document are linked (`link[k]`: suffixes sa[k] and sa[k+1]); a maximal chain of links is a group
= all occurrences of one L-gram. Clipping the LCP at the document end is enough because two
suffixes whose common prefix passes a separator have that separator at the same offset. Every
group member is marked as a window start, then each group's smallest position (its first
occurrence) is unmarked for `keep="first"`. Windows are merged into runs from the start mask.

Memory: past the suffix array and LCP, everything works on `chunk` entries at a time (a group or
a run crossing a chunk edge is carried over), so the only full-size arrays are the units, the
suffix array, the LCP (freed after linking) and two boolean masks; the number of repeats does not
change the peak. Positions are int64 in all arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import numpy as np

from .suffix_array import lcp_array, suffix_array

Keep = Literal["first", "none"]
CHUNK = 1 << 22


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
    def from_lengths(cls, units: np.ndarray, lengths: np.ndarray) -> "Shard":
        lengths = np.asarray(lengths, dtype=np.int64)
        starts = np.zeros(lengths.shape[0], dtype=np.int64)
        if lengths.shape[0] > 1:
            np.cumsum(lengths[:-1] + 1, out=starts[1:])
        return cls(units, starts, lengths)


def concat(docs: Iterable[np.ndarray], sep: int, dtype: np.dtype, lengths: np.ndarray | None = None) -> Shard:
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


def duplicate_runs(shard: Shard, min_length: int, keep: Keep = "first", chunk: int = CHUNK) -> Runs:
    """Runs of units to remove so that every repeated span of >= min_length units is cut (see module doc).

    A big-endian `shard.units` (how the tokenizer writes them, ready for the byte-level suffix sort)
    is turned into native order in place once the suffix array is built.
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
    lcp = lcp_array(units, sa)
    link = _link(sa, lcp, shard.seps, L, chunk)
    del lcp
    if not link.any():
        return _empty()
    starts = _mark_starts(sa, link, keep, chunk)
    del sa, link
    rs, re_, windows = _runs(starts, L, chunk)
    if rs.size == 0:
        return _empty()
    doc = np.searchsorted(shard.seps, rs)
    base = shard.starts[doc]
    return Runs(doc.astype(np.int64), rs - base, re_ - base, windows)
