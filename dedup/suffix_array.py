"""Suffix array and LCP array of a unit sequence, from the compiled `pydivsufsort` library.

libdivsufsort sorts bytes. Wider units (uint16 GPT-2 ids, uint32) are sorted as their big-endian
byte string, keeping only suffixes that start on a unit boundary: big-endian byte order equals
unit order. Units given big-endian (as the ESD tokenizer writes them) are sorted as they are, with no
copy. pydivsufsort does the same internally but with several full-size temporaries (~30 bytes
per uint16 unit at peak); here libdivsufsort writes into a numpy array of our own, the filtering
is done in place, in chunks, and the array is then shrunk in place (realloc, no copy), so the peak
is the units + the byte-level suffix array (2 + 8 bytes per uint16 unit; it was 2 + 8 + 4 with a
compact copy). Kasai's LCP peaks at units + suffix array + its rank array + the LCP (2 + 3 x 4). Positions are
int32 below 2**31 bytes and int64 above (libdivsufsort64); callers widen to int64 before
arithmetic. `kasai` gives `lcp[i] = LCP(suffix sa[i], suffix sa[i+1])`.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pydivsufsort
from pydivsufsort.dll import libdivsufsort, libdivsufsort64

from .heap import trim_heap

_CHUNK = 1 << 20  # entries per compaction step: its temporaries stay small (they are the sort's peak otherwise)


def _divsufsort_bytes(data: np.ndarray, force64: bool) -> np.ndarray:
    """libdivsufsort on a uint8 array, into a numpy array that owns its memory (so it can be shrunk in
    place). The ctypes call releases the GIL."""
    n = data.shape[0]
    data = np.ascontiguousarray(data)
    wide = force64 or n > np.iinfo(np.int32).max
    out = np.empty(n, dtype=np.int64 if wide else np.int32)
    fn, ct = (libdivsufsort64.divsufsort64, ctypes.c_int64) if wide else (libdivsufsort.divsufsort, ctypes.c_int32)
    rc = fn(data.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), out.ctypes.data_as(ctypes.POINTER(ct)), ct(n))
    if rc:
        raise RuntimeError(f"libdivsufsort error {rc} on {n} bytes")
    return out


def suffix_array(units: np.ndarray) -> np.ndarray:
    """Start positions of all suffixes of `units`, in lexicographic order."""
    n = units.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if units.dtype == np.uint8:
        return _divsufsort_bytes(units, False)
    width = units.dtype.itemsize
    # the tokenizer writes big-endian units for this sort; anything else gets a big-endian copy
    big = units if units.dtype.byteorder == ">" else units.astype(f">u{width}")
    out = _divsufsort_bytes(big.view(np.uint8), force64=n * width > np.iinfo(np.int32).max)
    del big
    shift = width.bit_length() - 1
    w = 0
    low = np.empty(min(_CHUNK, out.shape[0]), dtype=out.dtype)  # temporaries reused by every chunk
    keep = np.empty(low.shape[0], dtype=bool)
    for c in range(0, out.shape[0], _CHUNK):  # compact in place: the write cursor never passes the read one
        blk = out[c : c + _CHUNK]
        m = keep[: blk.shape[0]]
        np.equal(np.bitwise_and(blk, width - 1, out=low[: blk.shape[0]]), 0, out=m)
        sel = blk[m]
        np.right_shift(sel, shift, out=sel)
        out[w : w + sel.shape[0]] = sel
        w += sel.shape[0]
    del low, keep
    assert w == n
    out.resize((n,), refcheck=False)  # realloc to the compact size: the tail goes back, no copy
    trim_heap(out.nbytes)  # the chunk temporaries above sit in freed heap pages between live blocks
    return out


def lcp_array(units: np.ndarray, sa: np.ndarray) -> np.ndarray:
    """Kasai LCP: `lcp[i]` = length of the common prefix of suffixes `sa[i]` and `sa[i+1]`."""
    if units.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return pydivsufsort.kasai(np.ascontiguousarray(units), sa)
