"""Suffix array and LCP array of a unit sequence, from the compiled `pydivsufsort` library.

libdivsufsort sorts bytes. Wider units (uint16 GPT-2 ids, uint32) are sorted as their big-endian
byte string, keeping only suffixes that start on a unit boundary: big-endian byte order equals
unit order. Units given big-endian (as the ESD tokenizer writes them) are sorted as they are, with no
copy. pydivsufsort does the same internally but with several full-size temporaries (~30 bytes
per uint16 unit at peak); here the filtering is done in place, in chunks, so the peak is the
units + the byte-level suffix array + a compact copy (2 + 8 + 4 bytes per uint16 unit). Kasai's
LCP peaks the same (units + suffix array + its rank array + the LCP: 2 + 3 x 4). Positions are
int32 below 2**31 bytes and int64 above (libdivsufsort64); callers widen to int64 before
arithmetic. `kasai` gives `lcp[i] = LCP(suffix sa[i], suffix sa[i+1])`.
"""

from __future__ import annotations

import numpy as np
import pydivsufsort

_CHUNK = 1 << 22


def suffix_array(units: np.ndarray) -> np.ndarray:
    """Start positions of all suffixes of `units`, in lexicographic order."""
    n = units.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if units.dtype == np.uint8:
        return pydivsufsort.divsufsort(np.require(units, requirements=["C", "W"]))
    width = units.dtype.itemsize
    # the tokenizer writes big-endian units for this sort; anything else gets a big-endian copy
    big = units if units.dtype.byteorder == ">" else units.astype(f">u{width}")
    out = pydivsufsort.divsufsort(big.view(np.uint8), force64=n * width > np.iinfo(np.int32).max)
    del big
    shift = width.bit_length() - 1
    w = 0
    for c in range(0, out.shape[0], _CHUNK):  # compact in place: the write cursor never passes the read one
        blk = out[c : c + _CHUNK]
        sel = blk[(blk & (width - 1)) == 0] >> shift
        out[w : w + sel.shape[0]] = sel
        w += sel.shape[0]
    assert w == n
    sa = out[:n].copy()
    return sa


def lcp_array(units: np.ndarray, sa: np.ndarray) -> np.ndarray:
    """Kasai LCP: `lcp[i]` = length of the common prefix of suffixes `sa[i]` and `sa[i+1]`."""
    if units.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return pydivsufsort.kasai(np.ascontiguousarray(units), sa)
