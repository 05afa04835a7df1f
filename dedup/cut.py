"""Removal runs as byte spans of the held text (`byte_spans`), snapped inward to character boundaries.

Spans are UTF-8 byte offsets (token runs are mapped through the per-token byte lengths).
A GPT-2 token boundary (or a byte window, in bytes mode) can fall inside a multi-byte character.
Rule: a character is removed only if ALL its bytes are inside a removed span; i.e. each span is
snapped inward to character boundaries (start moves forward, end moves back). The result is always
valid UTF-8, and nothing outside a duplicate is ever removed. The test oracle applies the same
rule to its brute-force byte mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .substring import Runs, Shard

if TYPE_CHECKING:
    from .held import HeldText


def _bytes_before(units: np.ndarray, byte_len: np.ndarray, q: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """For sorted unit positions `q`: the bytes of all units before each (a running sum, chunk by chunk, so
    no full-size prefix array). Separators weigh 0 bytes and each document's ids add up to its bytes
    (checked in `ExactSubstringDedup._tokenize`), so this is the position in the held buffer."""
    out = np.empty(q.shape[0], dtype=np.int64)
    base, j = 0, 0
    n = units.shape[0]
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        c = np.cumsum(byte_len[units[lo:hi]], dtype=np.int64)  # c[i]: bytes of units[lo : lo + i + 1]
        k = int(np.searchsorted(q, hi))
        off = q[j:k] - lo
        out[j:k] = base + np.where(off > 0, c[np.maximum(off - 1, 0)], 0)
        base += int(c[-1])
        j = k
    out[j:] = base
    return out


def byte_spans(held: HeldText, shard: Shard, runs: Runs, byte_len: np.ndarray | None) -> Runs:
    """The runs as byte spans of `held.buf` (global offsets), snapped inward to character boundaries (see
    cut.py: a character goes only if all its bytes are in a run); spans left empty are dropped."""
    if len(runs) == 0:
        return runs
    if byte_len is None:  # bytes mode: the held buffer is the shard's units
        gs, ge = shard.starts[runs.doc] + runs.start, shard.starts[runs.doc] + runs.end
    else:  # token runs -> bytes through the per-token byte lengths
        base = shard.starts[runs.doc]
        q = np.concatenate((base + runs.start, base + runs.end))
        order = np.argsort(q, kind="stable")
        b = np.empty_like(q)
        b[order] = _bytes_before(shard.units, byte_len, q[order])
        gs, ge = b[: len(runs)], b[len(runs) :]
    buf = held.buf
    end = held.at[runs.doc] + held.nbytes[runs.doc]  # the document's last byte + 1
    last = max(buf.shape[0] - 1, 0)
    for _ in range(3):  # a UTF-8 character has at most 3 continuation bytes (10xxxxxx)
        gs = gs + ((gs < end) & ((buf[np.minimum(gs, last)] & 0xC0) == 0x80))
        ge = ge - ((ge < end) & ((buf[np.minimum(ge, last)] & 0xC0) == 0x80))
    keep = ge > gs
    return Runs(runs.doc[keep], gs[keep], ge[keep], runs.windows)
