"""Give freed heap pages back to the OS between the big steps of a shard (glibc `malloc_trim`).

The documents' strings and numpy's temporaries are freed between live allocations, and glibc keeps
those pages mapped: without a trim, text the step let go would still count in RSS at the suffix
sort's peak. A trim walks every malloc arena, which in a large process with many threads (a Ray
driver, a notebook with torch loaded) costs tens of milliseconds: per small shard that was most of
the step's time (the ESD oracle tests: 6x slower after Ray had started in the same process). So a
call that says how much it freed is skipped below TRIM_MIN_BYTES, where the pages do not matter.
"""

from __future__ import annotations

import ctypes

TRIM_MIN_BYTES = 8 * 2**20


def trim_heap(freed: int | None = None) -> None:
    """`malloc_trim(0)` (glibc only; elsewhere a no-op), unless `freed` is below TRIM_MIN_BYTES. `freed`: about
    how much the caller let go; the size of the shard array it worked on is a fair proxy (the temporaries
    freed are proportional to it). None: always trim."""
    if freed is not None and freed < TRIM_MIN_BYTES:
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


__all__ = ["TRIM_MIN_BYTES", "trim_heap"]
