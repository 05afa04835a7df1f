"""Suffix array and LCP array of a unit sequence, from the compiled `pydivsufsort` library.

`pydivsufsort.divsufsort` takes uint8 / uint16 / uint32 arrays (wide ones are sorted as big-endian
byte strings, keeping only suffixes at unit boundaries) and switches to the 64-bit library above
2**31 units, so positions are int32 or int64 as the length requires. `kasai` gives
`lcp[i] = LCP(suffix sa[i], suffix sa[i+1])` (last entry 0). Callers widen to int64 before doing
arithmetic on positions.
"""

from __future__ import annotations

import numpy as np
import pydivsufsort


def suffix_array(units: np.ndarray) -> np.ndarray:
    """Start positions of all suffixes of `units`, in lexicographic order."""
    if units.size == 0:
        return np.zeros(0, dtype=np.int64)
    return pydivsufsort.divsufsort(np.ascontiguousarray(units))


def lcp_array(units: np.ndarray, sa: np.ndarray) -> np.ndarray:
    """Kasai LCP: `lcp[i]` = length of the common prefix of suffixes `sa[i]` and `sa[i+1]`."""
    if units.size == 0:
        return np.zeros(0, dtype=np.int64)
    return pydivsufsort.kasai(np.ascontiguousarray(units), sa)
