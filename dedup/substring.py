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
document form groups (a group = all occurrences of one L-gram: contiguous in suffix-array order).
Clipping the LCP at the document end is enough because two suffixes whose common prefix passes a
separator have that separator at the same offset. Per group the smallest position is the first
occurrence. The removal windows are merged into runs with sort + cumulative max. All positions
are int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

import numpy as np

from .suffix_array import lcp_array, suffix_array

Keep = Literal["first", "none"]


@dataclass
class Shard:
    """A shard's documents as one unit array: doc i is units[starts[i] : starts[i] + lengths[i]], then a separator."""

    units: np.ndarray
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64

    @property
    def seps(self) -> np.ndarray:
        return self.starts + self.lengths


def concat(docs: Iterable[np.ndarray], sep: int, dtype: np.dtype, lengths: np.ndarray | None = None) -> Shard:
    """One array: each doc then `sep`. With `lengths` given, `docs` may be a generator (filled one at a time)."""
    if lengths is None:
        docs = list(docs)
        lengths = np.fromiter((d.shape[0] for d in docs), dtype=np.int64, count=len(docs))
    lengths = np.asarray(lengths, dtype=np.int64)
    n = lengths.shape[0]
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
    units = np.empty(int(lengths.sum()) + n, dtype=dtype)
    units[starts + lengths] = sep
    for d, s, ln in zip(docs, starts.tolist(), lengths.tolist()):
        assert d.shape[0] == ln
        units[s : s + ln] = d
    return Shard(units, starts, lengths)


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


def duplicate_runs(shard: Shard, min_length: int, keep: Keep = "first") -> Runs:
    """Runs of units to remove so that every repeated span of >= min_length units is cut (see module doc)."""
    L = int(min_length)
    units = shard.units
    if units.shape[0] <= L:  # a repeat (even self-overlapping) needs L + 1 units
        return _empty()
    sa = suffix_array(units)
    lcp = lcp_array(units, sa)
    pair = np.flatnonzero(lcp >= L)  # pair k links suffixes sa[k] and sa[k+1]
    del lcp
    if pair.size == 0:
        return _empty()
    seps = shard.seps
    p = sa[pair].astype(np.int64)
    rem = seps[np.searchsorted(seps, p)] - p  # units left before the document's end
    pair = pair[rem >= L]
    del p, rem
    if pair.size == 0:
        return _empty()
    # groups = runs of consecutive valid pairs; group g holds suffix-array indices pair[gs]..pair[ge] + 1
    ge = np.flatnonzero(np.append(pair[1:] != pair[:-1] + 1, True))  # last pair of each group
    ng = ge.shape[0]
    sizes = np.diff(np.concatenate(([-1], ge))) + 1  # pairs in group + 1
    extra = ge + np.arange(1, ng + 1)  # where each group's last member goes in `members`
    members = np.empty(pair.shape[0] + ng, dtype=np.int64)
    slot = np.ones(members.shape[0], dtype=bool)
    slot[extra] = False
    members[slot] = pair
    members[extra] = pair[ge] + 1
    opens = np.concatenate(([0], extra[:-1] + 1))
    pos = sa[members].astype(np.int64)
    del sa, members, slot, extra
    if keep == "first":
        gid = np.repeat(np.arange(ng), sizes)
        first = np.minimum.reduceat(pos, opens)
        starts = pos[pos != first[gid]]
    elif keep == "none":
        starts = pos
    else:
        raise ValueError(f"keep must be 'first' or 'none', not {keep!r}")
    if starts.size == 0:
        return _empty()
    starts = np.sort(starts)
    ends = starts + L
    # windows all have length L, so ends are sorted too: a run breaks where a window starts after the previous end
    brk = np.flatnonzero(starts[1:] > ends[:-1]) + 1
    first_i = np.concatenate(([0], brk))
    last_i = np.concatenate((brk - 1, [starts.size - 1]))
    rs, re_ = starts[first_i], ends[last_i]
    doc = np.searchsorted(seps, rs)
    base = shard.starts[doc]
    return Runs(doc.astype(np.int64), rs - base, re_ - base, int(starts.size))
