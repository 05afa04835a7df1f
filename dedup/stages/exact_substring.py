"""exact_substring_dedup (ESD): buffer a shard of documents, cut every repeated span, pass them on.

A shard is a run of consecutive documents of one input file whose UTF-8 text adds up to `shard_bytes`
(GneissWeb: one ~200 MB file), so the output does not depend on the task count. Duplicates are found within a shard only. Per shard: hold the text
as one UTF-8 buffer (`HeldText`, held.py: the documents' strings are let go) -> tokenize (or take the
bytes) into one array with separators -> suffix array + LCP -> removal runs (`substring.py`) ->
map token runs to byte spans -> cut (`cut.py`) and give every document its text back. Documents come
out in their input order; each gets `esd_removed_spans` and `esd_removed_chars`, and with `record_edits`
every cut as a span of the `edits` column (core/edits.py). A shard with no
repeats passes through unchanged. A document emptied by the cut (nothing but whitespace left) is
kept, or dropped as `esd_emptied` with `drop_empty`, and counted either way.

Memory: the options refuse a configured shard size whose estimated peak (memory.py, checked against
scripts/bench/esd.py) is over `max_memory_gb`; before the heavy part the step estimates each real
shard's peak from its text bytes and unit count and raises a CurateError naming the shard when
`max_memory_gb` cannot hold it (one huge document), instead of being killed by the OOM killer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from datatrove.data import Document
from pydantic import Field, model_validator

from curate.core.stage_api import (
    Column,
    CurateError,
    CurateStep,
    LocalPath,
    PreflightContext,
    StrictModel,
    edits,
    edits_columns,
    register_prepare,
    register_stage,
)

from ..cut import byte_spans
from ..heap import trim_heap
from ..held import HeldText, Tokenized, release_text, text_sizes
from ..memory import TOKENS_PER_BYTE_GUESS, estimate_bytes, estimate_for_shard
from ..substring import Runs, Shard, concat, duplicate_runs

# the reader's field naming a document's input file (curate.pipeline.readers.SOURCE_FILE; dedup imports only core)
SOURCE_FILE = "source_file"
REMOVED_SPANS = "esd_removed_spans"
REMOVED_CHARS = "esd_removed_chars"


def _source_file(doc: Document) -> str | None:
    """A shard never spans two input files: which documents share a shard then does not depend on how the
    files were split between tasks (GneissWeb's shard is one file)."""
    return doc.metadata.get(SOURCE_FILE)


class ExactSubstringOptions(StrictModel):
    units: Literal["tokens", "bytes"] = Field("tokens", description="compare GPT-2 tokens (GneissWeb) or UTF-8 bytes")
    min_length: int = Field(50, ge=1, description="shortest repeated span removed, in `units` (GneissWeb: 50 tokens)")
    keep: Literal["first", "none"] = Field(
        "first", description="keep the first copy in text order (GneissWeb) or remove every copy (Lee et al.)"
    )
    shard_bytes: int = Field(
        200_000_000,
        ge=1,
        description="UTF-8 bytes of text per shard; repeats are found within a shard (GneissWeb: ~200 MB files)",
    )
    shard_tokens: int | None = Field(
        None,
        ge=1,
        description="tokens per shard instead of shard_bytes (tokens mode; documents are tokenized as they arrive)",
    )
    drop_empty: bool = Field(
        False,
        description="drop documents left with only whitespace (reason esd_emptied); "
        "they are kept and counted otherwise",
    )
    tokenizer: LocalPath | None = Field(
        None,
        description="folder with vocab.json + merges.txt (tiktoken) or a byte-level BPE tokenizer.json; "
        "default: bundled GPT-2",
    )
    threads: int = Field(2, ge=1, description="tokenizer threads")
    max_memory_gb: float = Field(
        8.0, gt=0, description="refuse (clear error) a shard whose estimated peak RAM is above this"
    )
    record_edits: bool = Field(
        True, description="record every cut span (offsets and text) in the edits column, for `curate diff`"
    )

    @model_validator(mode="after")
    def _fits(self) -> ExactSubstringOptions:
        if self.shard_tokens is not None and self.units != "tokens":
            raise ValueError(
                "shard_tokens counts GPT-2 tokens: use it with units: tokens, or shard_bytes in bytes mode"
            )
        need = estimate_for_shard(self.shard_bytes, self.units, self.shard_tokens) / 2**30
        size = f"shard_tokens={self.shard_tokens}" if self.shard_tokens else f"shard_bytes={self.shard_bytes}"
        if need > self.max_memory_gb:
            raise ValueError(
                f"{size} needs about {need:.1f} GiB in {self.units} mode, over "
                f"max_memory_gb={self.max_memory_gb}; lower {size.split('=')[0]} or raise max_memory_gb"
            )
        return self


@register_stage(
    "exact_substring_dedup",
    ExactSubstringOptions,
    "cut every span of >= min_length tokens/bytes that repeats within a shard (suffix array, GneissWeb)",
    columns=lambda opts: [
        Column(REMOVED_SPANS, pa.int64(), "spans cut out of this document by exact-substring dedup"),
        Column(REMOVED_CHARS, pa.int64(), "characters cut out of this document by exact-substring dedup"),
        *edits_columns(opts),
    ],
)
class ExactSubstringDedup(CurateStep):
    name = "exact substring dedup"

    def __init__(self, opts: ExactSubstringOptions, label: str | None = None) -> None:
        super().__init__(label)
        self.opts = opts
        self.last_estimate = 0  # the memory model's figure for the last shard (bytes), for benchmarks

    # -- datatrove -------------------------------------------------------------------------------
    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        i = 0
        for _file, docs_of_file in itertools.groupby(data, key=_source_file):
            for docs, ready in self._shards_of_file(docs_of_file):
                yield from self._shard(docs, f"rank {rank} shard {i}", ready)
                i += 1

    def _shards_of_file(self, docs: Iterable[Document]) -> Iterator[tuple[list[Document], Tokenized | None]]:
        return self._shards_by_tokens(docs) if self.opts.shard_tokens else self._shards_by_bytes(docs)

    def _shards_by_bytes(self, data: Iterable[Document]) -> Iterator[tuple[list[Document], None]]:
        """Consecutive documents until their UTF-8 text reaches `shard_bytes` (tokenized at shard time)."""
        buf: list[Document] = []
        size = 0
        for doc in data:
            buf.append(doc)
            size += len(doc.text) if doc.text.isascii() else len(doc.text.encode("utf-8", "surrogatepass"))
            if size >= self.opts.shard_bytes:
                yield buf, None
                buf, size = [], 0
        if buf:
            yield buf, None

    def _shards_by_tokens(self, data: Iterable[Document]) -> Iterator[tuple[list[Document], Tokenized]]:
        """Consecutive documents until their tokens reach `shard_tokens`.

        Documents are tokenized in batches as they arrive, and each batch's text is held as UTF-8 at
        once (see `_dedup`). A shard ends at the document that reaches the limit; the rest of its batch
        starts the next one, so shards do not depend on the batch size and nothing is tokenized twice.
        """
        from ..tokenize import CHUNK_DOCS, get_tokenizer

        limit = self.opts.shard_tokens
        assert limit is not None  # run() shards by tokens only then
        tok = get_tokenizer(self.opts.tokenizer, self.opts.threads)
        it = iter(data)
        pending: list[Tokenized] = []
        total = 0
        try:
            while batch := list(itertools.islice(it, 2 * self.opts.threads * CHUNK_DOCS)):
                pending.append(Tokenized.encode(batch, tok))
                total += int(pending[-1].lengths.sum())
                while total >= limit:
                    last = pending[-1]
                    before = total - int(last.lengths.sum())  # < shard_tokens: the limit is reached in `last`
                    k = int(np.searchsorted(np.cumsum(last.lengths), limit - before)) + 1
                    head, tail = last.split(k)
                    shard = Tokenized.join(pending[:-1] + [head])
                    pending = [tail] if tail.docs else []  # before the yield: a shard handed over is _dedup's
                    total = int(tail.lengths.sum())
                    tok.release()
                    trim_heap(shard.units.nbytes)  # the joined batches' buffers were freed between live allocations
                    yield shard.docs, shard
            if pending:
                shard, pending = Tokenized.join(pending), []
                tok.release()
                trim_heap(shard.units.nbytes)
                yield shard.docs, shard
        except BaseException:  # upstream failed, or the consumer stopped early: documents not handed over
            # to `_dedup` get their text back
            for p in pending:
                p.held.give_back(p.docs)
            raise

    # -- one shard -------------------------------------------------------------------------------
    def _check_memory(self, where: str, text_bytes: int, units: int, width: int | None = None) -> None:
        need = self.last_estimate = estimate_bytes(text_bytes, units, self.opts.units, width)
        limit = self.opts.max_memory_gb * 2**30
        size = "shard_tokens" if self.opts.shard_tokens else "shard_bytes"
        if need > limit:
            raise CurateError(
                f"exact_substring_dedup: {where} has {text_bytes / 1e6:.1f} MB of text ({units:,} {self.opts.units})"
                f" and needs about {need / 2**30:.1f} GiB, over max_memory_gb={self.opts.max_memory_gb}; lower {size} "
                f"or raise max_memory_gb (a single document larger than {size} makes a shard of its own)"
            )

    def _shard(self, docs: list[Document], where: str, ready: Tokenized | None = None) -> Iterator[Document]:
        with self.track_time():
            self._dedup(docs, where, ready)
        for doc in docs:
            if self.opts.drop_empty and doc.metadata.get(REMOVED_SPANS) and not doc.text.strip():
                self.drop(doc, "esd_emptied")
            else:
                yield doc

    def _dedup(self, docs: list[Document], where: str, ready: Tokenized | None = None) -> None:
        """Cut the shard's repeats in place. `ready`: the shard already tokenized with its text held
        (shards by tokens); otherwise both happen here."""
        # From here to the cut the text is held once, as UTF-8, instead of as Python strings (2-4 bytes
        # per character once a document has one non-ASCII character): each document's str is let go
        # and the document gets its text back in `_cut`, cut or untouched (at once if anything fails).
        if ready is None:
            held, shard, ready = self._hold(docs, where)
        else:
            held, shard = ready.held, None
        ids = (ready.units, ready.lengths) if ready is not None else None
        ready = None  # the shard's arrays below are the only references (freed as the span finder goes)
        if not held.ok.all():
            self.stat_update("esd_unencodable_docs", value=int((~held.ok).sum()))
        try:
            byte_len = None
            if self.opts.units == "tokens":
                assert ids is not None  # tokens mode: documents are tokenized as they arrive (`ready`)
                shard, byte_len = self._tokenize(held, where, ids)
            del ids
            assert shard is not None  # bytes mode: _hold built it; tokens mode: _tokenize did
            runs = duplicate_runs(shard, self.opts.min_length, self.opts.keep)
        except BaseException:
            held.give_back(docs)
            raise
        self.stat_update("esd_shards")
        self.stat_update(f"esd_{self.opts.units}", value=int(shard.units.shape[0]) - len(docs))
        spans = byte_spans(held, shard, runs, byte_len)
        freed = shard.units.nbytes
        del shard, runs  # the units go before the documents get their strings back
        trim_heap(freed)
        self._cut(docs, held, spans)

    def _hold(self, docs: list[Document], where: str) -> tuple[HeldText, Shard | None, Tokenized | None]:
        """Refuse a shard too big for max_memory_gb, then hold its text and let the strings go. In bytes
        mode the shard's units are the held text (returned); in tokens mode the documents are tokenized
        from their strings first (no decoding back from the held bytes) and returned as a Tokenized."""
        texts = [d.text for d in docs]
        ok, nbytes, nchars = text_sizes(texts)
        text_bytes = int(nbytes.sum())
        guess = text_bytes if self.opts.units == "bytes" else int(text_bytes * TOKENS_PER_BYTE_GUESS)
        self._check_memory(where, text_bytes, guess)
        if self.opts.units == "tokens":
            from ..tokenize import get_tokenizer

            del texts
            ready = Tokenized.encode(
                docs, get_tokenizer(self.opts.tokenizer, self.opts.threads), (ok, nbytes, nchars), release=True
            )
            return ready.held, None, ready
        # one document's bytes at a time, straight into the shard array: the units are the held text
        arrays = (
            np.frombuffer(t.encode("utf-8"), dtype=np.uint8) if k else np.zeros(0, np.uint8) for t, k in zip(texts, ok)
        )
        shard = concat(arrays, 0xFF, np.uint8, lengths=nbytes)  # 0xFF never occurs in UTF-8
        held = HeldText(shard.units, shard.starts, nbytes, ok, nchars)
        del texts
        release_text(docs, ok, int(nbytes.sum()))
        return held, shard, None

    def _tokenize(self, held: HeldText, where: str, ids: tuple[np.ndarray, np.ndarray]) -> tuple[Shard, np.ndarray]:
        """The shard as GPT-2 ids (big-endian, for the suffix sort), and the byte length of every id."""
        from ..tokenize import get_tokenizer

        tok = get_tokenizer(self.opts.tokenizer, self.opts.threads)
        ok, nbytes = held.ok, held.nbytes
        units, lengths = ids
        shard = Shard.from_lengths(units, lengths)
        byte_len = np.append(tok.byte_len, 0).astype(np.uint8 if tok.byte_len.max() < 256 else np.int64)
        # the ids' bytes must add up to each document's, or spans would map back wrongly
        got = np.zeros(len(ok), dtype=np.int64)
        native = np.dtype(shard.units.dtype).newbyteorder("=")
        for a in range(0, len(ok), 4096):
            lo, hi = int(shard.starts[a]), int(shard.seps[min(a + 4096, len(ok)) - 1]) + 1
            got[a : a + 4096] = np.add.reduceat(
                byte_len[shard.units[lo:hi].astype(native)], shard.starts[a : a + 4096] - lo, dtype=np.int64
            )
        trim_heap(shard.units.nbytes)  # the check's chunk temporaries, before the suffix sort's peak
        if not np.array_equal(got, nbytes):
            bad = int(np.flatnonzero(got != nbytes)[0])
            raise CurateError(
                f"tokenizer {tok.path}: token bytes do not add up to document {bad} of {where} "
                f"({got[bad]} vs {nbytes[bad]} bytes)"
            )
        self._check_memory(where, held.text_bytes, int(shard.units.shape[0]), shard.units.dtype.itemsize)
        return shard, byte_len

    def _cut(self, docs: list[Document], held: HeldText, spans: Runs) -> None:
        """Give every document its text back, cut by `spans` (byte spans of the held buffer, from
        `byte_spans`: all runs mapped and snapped to character boundaries at once, in numpy); only the
        joining of the kept pieces and the decoding are per document."""
        with_runs, firsts = np.unique(spans.doc, return_index=True)  # spans are sorted by document
        todo = dict(zip(with_runs.tolist(), zip(firsts.tolist(), [*firsts[1:].tolist(), len(spans)])))
        mv = held.buf.data  # a memoryview of the held bytes
        at, nbytes = held.at.tolist(), held.nbytes.tolist()
        gs, ge = spans.start.tolist(), spans.end.tolist()
        spans_total = chars_total = changed = emptied = 0
        for i, doc in enumerate(docs):
            doc.metadata[REMOVED_SPANS] = 0
            doc.metadata[REMOVED_CHARS] = 0
            if not held.ok[i]:
                continue
            a0, z0 = at[i], at[i] + nbytes[i]
            if i not in todo:
                doc.text = str(mv[a0:z0], "utf-8")
                continue
            a, z = todo[i]
            if self.opts.record_edits:
                new = doc.text = self._cut_recorded(doc, mv, a0, z0, gs[a:z], ge[a:z])
            else:
                pieces, prev = [], a0
                for x, y in zip(gs[a:z], ge[a:z]):
                    pieces.append(mv[prev:x])
                    prev = y
                pieces.append(mv[prev:z0])
                new = doc.text = b"".join(pieces).decode("utf-8")
            removed = int(held.nchars[i]) - len(new)
            doc.metadata[REMOVED_SPANS] = z - a
            doc.metadata[REMOVED_CHARS] = removed
            spans_total += z - a
            chars_total += removed
            changed += 1
            emptied += not new.strip()
        self.stat_update("esd_removed_spans", value=spans_total)
        self.stat_update("esd_removed_chars", value=chars_total)
        self.stat_update("esd_docs_changed", value=changed)
        self.stat_update("esd_docs_emptied", value=emptied)

    def _cut_recorded(self, doc: Document, mv: memoryview, a0: int, z0: int, starts: list[int], ends: list[int]) -> str:
        """The cut text, with each cut recorded in the edits column as character offsets of the text
        before the cut (spans are bytes of the held buffer: decoding piece by piece counts the characters)."""
        kept: list[str] = []
        cuts: list[dict] = []
        stage = self.label or "exact_substring_dedup"
        at, prev = 0, a0
        for x, y in zip(starts, ends):
            piece = str(mv[prev:x], "utf-8")
            gone = str(mv[x:y], "utf-8")
            kept.append(piece)
            at += len(piece)
            cuts.append({"stage": stage, "start": at, "end": at + len(gone), "old": gone, "new": "", "note": None})
            at += len(gone)
            prev = y
        kept.append(str(mv[prev:z0], "utf-8"))
        doc.metadata[edits.EDITS] = list(doc.metadata.get(edits.EDITS) or []) + cuts
        return "".join(kept)


@register_prepare("exact_substring_dedup")
def prepare_exact_substring(opts: ExactSubstringOptions, pf: PreflightContext) -> None:
    """A configured tokenizer folder holds vocab.json + merges.txt or a tokenizer.json (byte-level BPE)."""
    if opts.tokenizer is None:
        return
    p = Path(opts.tokenizer)
    ok = (p.is_file() and p.suffix == ".json") or (
        p.is_dir()
        and ((p / "tokenizer.json").is_file() or ((p / "vocab.json").is_file() and (p / "merges.txt").is_file()))
    )
    if not ok:
        pf.problem(
            f"{opts.tokenizer!r} is neither a folder with vocab.json + merges.txt (or tokenizer.json) "
            "nor a tokenizer.json file",
            f"{pf.key}.tokenizer",
        )
