"""Cut removed byte spans out of a document's text.

Spans come in UTF-8 byte offsets (token spans are mapped through the per-token byte lengths).
A GPT-2 token boundary (or a byte window, in bytes mode) can fall inside a multi-byte character.
Rule: a character is removed only if ALL its bytes are inside a removed span; i.e. each span is
snapped inward to character boundaries (start moves forward, end moves back). The result is always
valid UTF-8, and nothing outside a duplicate is ever removed. The test oracle applies the same
rule to its brute-force byte mask.
"""

from __future__ import annotations

import numpy as np


def char_boundaries(data: bytes) -> np.ndarray:
    """Byte offsets where a character starts, plus len(data) at the end."""
    arr = np.frombuffer(data, dtype=np.uint8)
    return np.concatenate((np.flatnonzero((arr & 0xC0) != 0x80), [arr.shape[0]])).astype(np.int64)


def cut_bytes(data: bytes, starts: np.ndarray, ends: np.ndarray) -> tuple[str, int]:
    """Remove [starts[i], ends[i]) (sorted, disjoint) from UTF-8 `data`, snapped inward.

    Returns the new text and the number of spans that removed at least one character.
    """
    if starts.size == 0:
        return data.decode("utf-8", errors="surrogatepass"), 0
    b = char_boundaries(data)
    s = b[np.searchsorted(b, starts, side="left")]
    e = b[np.searchsorted(b, ends, side="right") - 1]
    keep = e > s
    s, e = s[keep], e[keep]
    if s.size == 0:
        return data.decode("utf-8", errors="surrogatepass"), 0
    pieces = []
    prev = 0
    for a, z in zip(s.tolist(), e.tolist()):
        pieces.append(data[prev:a])
        prev = z
    pieces.append(data[prev:])
    return b"".join(pieces).decode("utf-8", errors="surrogatepass"), int(s.size)
