"""The exact-substring dedup step (ESD): buffer a shard of documents, cut every repeated span, pass them on.

A shard is a run of consecutive documents of one task whose UTF-8 text adds up to `shard_bytes`
(GneissWeb: one ~200 MB file). Duplicates are found within a shard only. Per shard:
tokenize (or take the bytes) -> concatenate with separators -> suffix array + LCP ->
removal runs (`substring.py`) -> map token runs to byte spans -> cut (`cut.py`). Documents come
out in their input order; each gets `esd_removed_spans` and `esd_removed_chars`. A shard with no
repeats passes through unchanged. A document emptied by the cut (nothing but whitespace left) is
kept, or dropped as `esd_emptied` with `drop_empty`, and counted either way.

Memory: before the heavy part the step estimates the shard's peak from its text bytes and unit
count (constants measured by scripts/bench/esd.py) and raises a CurateError naming the shard
when `max_memory_gb` cannot hold it, instead of being killed by the OOM killer.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Literal

import numpy as np
from datatrove.data import Document

from curate.pipeline.errors import CurateError
from curate.pipeline.steps import CurateStep

from .cut import cut_bytes
from .substring import Runs, concat, duplicate_runs

REMOVED_SPANS = "esd_removed_spans"
REMOVED_CHARS = "esd_removed_chars"

# Peak RAM model (measured; see README): the buffered text itself (Python str + UTF-8 copy + the
# cut result) costs ~TEXT_FACTOR bytes per text byte; the unit arrays cost UNIT_BYTES per unit
# (units, suffix array, divsufsort's working copy for wide alphabets, Kasai's rank + LCP, marks).
TEXT_FACTOR = 3.0
UNIT_BYTES = {"tokens": 20.0, "bytes": 13.0}
# tokens per text byte assumed before tokenizing (GPT-2 on English web text is ~0.25-0.33)
TOKENS_PER_BYTE_GUESS = 0.35


def estimate_bytes(text_bytes: int, units: int, mode: str) -> int:
    return int(text_bytes * TEXT_FACTOR + units * UNIT_BYTES[mode])


def estimate_for_shard(shard_bytes: int, mode: str) -> int:
    units = shard_bytes if mode == "bytes" else int(shard_bytes * TOKENS_PER_BYTE_GUESS)
    return estimate_bytes(shard_bytes, units, mode)


class ExactSubstringDedup(CurateStep):
    name = "exact substring dedup"

    def __init__(self, units: Literal["tokens", "bytes"] = "tokens", min_length: int = 50,
                 keep: Literal["first", "none"] = "first", shard_bytes: int = 200_000_000, drop_empty: bool = False,
                 tokenizer: str | None = None, threads: int = 2, max_memory_gb: float = 8.0,
                 label: str | None = None) -> None:
        super().__init__(label)
        self.units = units
        self.min_length = min_length
        self.keep = keep
        self.shard_bytes = shard_bytes
        self.drop_empty = drop_empty
        self.tokenizer_path = tokenizer
        self.threads = threads
        self.max_memory_gb = max_memory_gb

    # -- datatrove -------------------------------------------------------------------------------
    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        buf: list[Document] = []
        size = 0
        shard_i = 0
        for doc in data:
            buf.append(doc)
            size += len(doc.text) if doc.text.isascii() else len(doc.text.encode("utf-8", "surrogatepass"))
            if size >= self.shard_bytes:
                yield from self._shard(buf, f"rank {rank} shard {shard_i}")
                buf, size, shard_i = [], 0, shard_i + 1
        if buf:
            yield from self._shard(buf, f"rank {rank} shard {shard_i}")

    # -- one shard -------------------------------------------------------------------------------
    def _check_memory(self, where: str, text_bytes: int, units: int) -> None:
        need = estimate_bytes(text_bytes, units, self.units)
        limit = self.max_memory_gb * 2**30
        if need > limit:
            raise CurateError(
                f"exact_substring_dedup: {where} has {text_bytes / 1e6:.1f} MB of text ({units:,} {self.units}) and "
                f"needs about {need / 2**30:.1f} GiB, over max_memory_gb={self.max_memory_gb}; lower shard_bytes "
                f"or raise max_memory_gb (a single document larger than shard_bytes makes a shard of its own)")

    def _shard(self, docs: list[Document], where: str) -> Iterator[Document]:
        with self.track_time():
            result = self._dedup(docs, where)
        for doc in docs:
            if self.drop_empty and doc.metadata.get(REMOVED_SPANS) and not doc.text.strip():
                self.drop(doc, "esd_emptied")
            else:
                yield doc

    def _dedup(self, docs: list[Document], where: str) -> None:
        texts = [d.text for d in docs]
        ok = np.ones(len(docs), dtype=bool)
        nbytes = np.zeros(len(docs), dtype=np.int64)
        for i, t in enumerate(texts):
            try:
                nbytes[i] = len(t) if t.isascii() else len(t.encode("utf-8"))
            except UnicodeEncodeError:  # lone surrogates: not valid text, cannot be tokenized; left untouched
                ok[i] = False
        text_bytes = int(nbytes.sum())
        if not ok.all():
            self.stat_update("esd_unencodable_docs", value=int((~ok).sum()))
        guess = text_bytes if self.units == "bytes" else int(text_bytes * TOKENS_PER_BYTE_GUESS)
        self._check_memory(where, text_bytes, guess)

        if self.units == "bytes":
            # one document's bytes at a time, straight into the shard array (no second copy of the text)
            arrays = (np.frombuffer(t.encode("utf-8"), dtype=np.uint8) if k else np.zeros(0, np.uint8)
                      for t, k in zip(texts, ok))
            shard = concat(arrays, 0xFF, np.uint8, lengths=np.where(ok, nbytes, 0))  # 0xFF never occurs in UTF-8
            byte_len = None
        else:
            from .tokenize import get_tokenizer

            tok = get_tokenizer(self.tokenizer_path, self.threads)
            ids = tok.encode_batch([t if k else "" for t, k in zip(texts, ok)])
            shard = concat(ids, tok.sep_id, tok.dtype)
            del ids
            byte_len = np.append(tok.byte_len, 0).astype(np.uint8 if tok.byte_len.max() < 256 else np.int64)
            got = np.add.reduceat(byte_len[shard.units], shard.starts, dtype=np.int64)
            if not np.array_equal(got, np.where(ok, nbytes, 0)):
                bad = int(np.flatnonzero(got != nbytes)[0])
                raise CurateError(f"tokenizer {tok.path}: token bytes do not add up to document {bad} of {where} "
                                  f"({got[bad]} vs {nbytes[bad]} bytes)")
            self._check_memory(where, text_bytes, int(shard.units.shape[0]))

        runs = duplicate_runs(shard, self.min_length, self.keep)
        self.stat_update("esd_shards")
        self.stat_update(f"esd_{self.units}", value=int(shard.units.shape[0]) - len(docs))
        for d in docs:
            d.metadata[REMOVED_SPANS] = 0
            d.metadata[REMOVED_CHARS] = 0
        if len(runs) == 0:
            return
        self._cut(docs, shard, runs, byte_len)

    def _cut(self, docs: list[Document], shard, runs: Runs, byte_len: np.ndarray | None) -> None:
        bounds = np.flatnonzero(np.diff(runs.doc)) + 1
        firsts = np.concatenate(([0], bounds))
        lasts = np.concatenate((bounds, [len(runs)]))
        spans_total = chars_total = changed = emptied = 0
        for a, z in zip(firsts.tolist(), lasts.tolist()):
            i = int(runs.doc[a])
            s, e = runs.start[a:z], runs.end[a:z]
            if byte_len is not None:  # token runs -> byte spans through per-token byte lengths
                toks = shard.units[shard.starts[i]: shard.starts[i] + shard.lengths[i]]
                cum = np.zeros(toks.shape[0] + 1, dtype=np.int64)
                np.cumsum(byte_len[toks], out=cum[1:])
                s, e = cum[s], cum[e]
            doc = docs[i]
            old = doc.text
            new, nspans = cut_bytes(old.encode("utf-8"), s, e)
            if nspans == 0:
                continue
            doc.text = new
            removed = len(old) - len(new)
            doc.metadata[REMOVED_SPANS] = nspans
            doc.metadata[REMOVED_CHARS] = removed
            spans_total += nspans
            chars_total += removed
            changed += 1
            emptied += not new.strip()
        self.stat_update("esd_removed_spans", value=spans_total)
        self.stat_update("esd_removed_chars", value=chars_total)
        self.stat_update("esd_docs_changed", value=changed)
        self.stat_update("esd_docs_emptied", value=emptied)
