"""The peak-RAM model of one exact-substring dedup shard (see docs/stages/dedup.md, checked by scripts/bench/esd.py).

The buffered shard costs about TEXT_FACTOR bytes per UTF-8 text byte (its text held once as UTF-8
while the suffix array is built, the Document objects, leftovers of the tokenizer pass); the unit
arrays cost `unit_bytes` per unit, the larger of the suffix-sort peak (units + a byte-level suffix
array over width * n bytes + its compact copy) and Kasai's (units + suffix array + rank + LCP). Past
that point everything is chunked (substring.py), whatever the number of repeats. The options refuse
a configured shard size over `max_memory_gb` by this model, the step a real shard (one huge document).
"""

from __future__ import annotations

TEXT_FACTOR = 2.0
FIXED_BYTES = 48 * 2**20  # per shard whatever its size: thread arenas, chunk buffers, index arrays
# tokens per text byte assumed before tokenizing (GPT-2 on English web text is ~0.25-0.33)
TOKENS_PER_BYTE_GUESS = 0.35
MIN_TOKENS_PER_BYTE = 0.2  # plain English prose is ~0.22; only for the config-time guess with shard_tokens


def unit_bytes(units: int, width: int) -> int:
    """Peak bytes per unit of a shard of `units` units of `width` bytes each (1: bytes, 2: GPT-2 ids)."""
    pos = 4 if units * width < 2**31 else 8  # libdivsufsort's int32 / int64 positions
    sort = width + width * pos + (pos if width > 1 else 0)
    kasai = width + 3 * pos
    return max(sort, kasai)


def estimate_bytes(text_bytes: int, units: int, mode: str, width: int | None = None) -> int:
    """Predicted peak bytes of one shard; `width` defaults to 1 for bytes and 2 (uint16 ids) for tokens."""
    width = width or (1 if mode == "bytes" else 2)
    return int(FIXED_BYTES + text_bytes * TEXT_FACTOR + units * unit_bytes(units, width))


def estimate_for_shard(shard_bytes: int, mode: str, shard_tokens: int | None = None) -> int:
    """Predicted peak bytes of a shard of the configured size, before any text is seen."""
    if shard_tokens:  # text bytes unknown until tokenized: assume the fewest tokens per byte (most text)
        return estimate_bytes(int(shard_tokens / MIN_TOKENS_PER_BYTE), shard_tokens, mode)
    units = shard_bytes if mode == "bytes" else int(shard_bytes * TOKENS_PER_BYTE_GUESS)
    return estimate_bytes(shard_bytes, units, mode)
