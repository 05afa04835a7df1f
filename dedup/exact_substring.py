"""The exact-substring dedup step (ESD): buffer a shard of documents, cut every repeated span, pass them on.

A shard is a run of consecutive documents of one task whose UTF-8 text adds up to `shard_bytes`
(GneissWeb: one ~200 MB file). Duplicates are found within a shard only. Per shard: hold the text
as one UTF-8 buffer (`HeldText`, the documents' strings are let go) -> tokenize (or take the
bytes) into one array with separators -> suffix array + LCP -> removal runs (`substring.py`) ->
map token runs to byte spans -> cut (`cut.py`) and give every document its text back. Documents come
out in their input order; each gets `esd_removed_spans` and `esd_removed_chars`. A shard with no
repeats passes through unchanged. A document emptied by the cut (nothing but whitespace left) is
kept, or dropped as `esd_emptied` with `drop_empty`, and counted either way.

Memory: before the heavy part the step estimates the shard's peak from its text bytes and unit
count (the model below, checked against scripts/bench/esd.py) and raises a CurateError naming the shard
when `max_memory_gb` cannot hold it, instead of being killed by the OOM killer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Literal

import numpy as np
from datatrove.data import Document

from curate.core.errors import CurateError
from curate.core.steps import CurateStep

from .heap import trim_heap
from .substring import Runs, Shard, concat, duplicate_runs

if TYPE_CHECKING:
    from .tokenize import UnitTokenizer

REMOVED_SPANS = "esd_removed_spans"
REMOVED_CHARS = "esd_removed_chars"

# Peak RAM model (see README, checked by scripts/bench/esd.py): the buffered shard costs about
# TEXT_FACTOR bytes per UTF-8 text byte (its text held once as UTF-8 while the suffix array is built,
# the Document objects, leftovers of the tokenizer pass); the unit arrays cost `unit_bytes` per unit,
# the larger of the suffix-sort peak (units + a byte-level suffix array over width * n bytes + its
# compact copy) and Kasai's (units + suffix array + rank + LCP). Past that point everything is
# chunked (substring.py), whatever the number of repeats.
TEXT_FACTOR = 2.0
FIXED_BYTES = 48 * 2**20  # per shard whatever its size: thread arenas, chunk buffers, index arrays
# tokens per text byte assumed before tokenizing (GPT-2 on English web text is ~0.25-0.33)
TOKENS_PER_BYTE_GUESS = 0.35
TRIM_EVERY = 16 * 2**20  # bytes of text packed between two heap trims while the strings are let go
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
    if shard_tokens:  # text bytes unknown until tokenized: assume the fewest tokens per byte (most text)
        return estimate_bytes(int(shard_tokens / MIN_TOKENS_PER_BYTE), shard_tokens, mode)
    units = shard_bytes if mode == "bytes" else int(shard_bytes * TOKENS_PER_BYTE_GUESS)
    return estimate_bytes(shard_bytes, units, mode)


class ExactSubstringDedup(CurateStep):
    name = "exact substring dedup"

    def __init__(self, units: Literal["tokens", "bytes"] = "tokens", min_length: int = 50,
                 keep: Literal["first", "none"] = "first", shard_bytes: int = 200_000_000,
                 shard_tokens: int | None = None, drop_empty: bool = False, tokenizer: str | None = None,
                 threads: int = 2, max_memory_gb: float = 8.0, label: str | None = None) -> None:
        super().__init__(label)
        if shard_tokens is not None and units != "tokens":
            raise ValueError("shard_tokens needs units='tokens' (use shard_bytes in bytes mode)")
        self.units = units
        self.min_length = min_length
        self.keep = keep
        self.shard_bytes = shard_bytes
        self.shard_tokens = shard_tokens
        self.drop_empty = drop_empty
        self.tokenizer_path = tokenizer
        self.threads = threads
        self.max_memory_gb = max_memory_gb
        self.last_estimate = 0  # the memory model's figure for the last shard (bytes), for benchmarks

    # -- datatrove -------------------------------------------------------------------------------
    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        shards = self._shards_by_tokens(data) if self.shard_tokens else self._shards_by_bytes(data)
        for i, (docs, ready) in enumerate(shards):
            yield from self._shard(docs, f"rank {rank} shard {i}", ready)

    def _shards_by_bytes(self, data: Iterable[Document]) -> Iterator[tuple[list[Document], None]]:
        """Consecutive documents until their UTF-8 text reaches `shard_bytes` (tokenized at shard time)."""
        buf: list[Document] = []
        size = 0
        for doc in data:
            buf.append(doc)
            size += len(doc.text) if doc.text.isascii() else len(doc.text.encode("utf-8", "surrogatepass"))
            if size >= self.shard_bytes:
                yield buf, None
                buf, size = [], 0
        if buf:
            yield buf, None

    def _shards_by_tokens(self, data: Iterable[Document]) -> Iterator[tuple[list[Document], "Tokenized"]]:
        """Consecutive documents until their tokens reach `shard_tokens`.

        Documents are tokenized in batches as they arrive, and each batch's text is held as UTF-8 at
        once (see `_dedup`). A shard ends at the document that reaches the limit; the rest of its batch
        starts the next one, so shards do not depend on the batch size and nothing is tokenized twice.
        """
        from .tokenize import CHUNK_DOCS, get_tokenizer

        tok = get_tokenizer(self.tokenizer_path, self.threads)
        it = iter(data)
        pending: list[Tokenized] = []
        total = 0
        try:
            while batch := list(itertools.islice(it, 2 * self.threads * CHUNK_DOCS)):
                pending.append(Tokenized.encode(batch, tok))
                total += int(pending[-1].lengths.sum())
                while total >= self.shard_tokens:
                    last = pending[-1]
                    before = total - int(last.lengths.sum())  # < shard_tokens: the limit is reached in `last`
                    k = int(np.searchsorted(np.cumsum(last.lengths), self.shard_tokens - before)) + 1
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
        need = self.last_estimate = estimate_bytes(text_bytes, units, self.units, width)
        limit = self.max_memory_gb * 2**30
        size = "shard_tokens" if self.shard_tokens else "shard_bytes"
        if need > limit:
            raise CurateError(
                f"exact_substring_dedup: {where} has {text_bytes / 1e6:.1f} MB of text ({units:,} {self.units}) and "
                f"needs about {need / 2**30:.1f} GiB, over max_memory_gb={self.max_memory_gb}; lower {size} "
                f"or raise max_memory_gb (a single document larger than {size} makes a shard of its own)")

    def _shard(self, docs: list[Document], where: str, ready: "Tokenized | None" = None) -> Iterator[Document]:
        with self.track_time():
            self._dedup(docs, where, ready)
        for doc in docs:
            if self.drop_empty and doc.metadata.get(REMOVED_SPANS) and not doc.text.strip():
                self.drop(doc, "esd_emptied")
            else:
                yield doc

    def _dedup(self, docs: list[Document], where: str, ready: "Tokenized | None" = None) -> None:
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
            if self.units == "tokens":
                shard, byte_len = self._tokenize(held, where, ids)
            del ids
            runs = duplicate_runs(shard, self.min_length, self.keep)
        except BaseException:
            held.give_back(docs)
            raise
        self.stat_update("esd_shards")
        self.stat_update(f"esd_{self.units}", value=int(shard.units.shape[0]) - len(docs))
        spans = byte_spans(held, shard, runs, byte_len)
        freed = shard.units.nbytes
        del shard, runs  # the units go before the documents get their strings back
        trim_heap(freed)
        self._cut(docs, held, spans)

    def _hold(self, docs: list[Document], where: str) -> tuple["HeldText", Shard | None, "Tokenized | None"]:
        """Refuse a shard too big for max_memory_gb, then hold its text and let the strings go. In bytes
        mode the shard's units are the held text (returned); in tokens mode the documents are tokenized
        from their strings first (no decoding back from the held bytes) and returned as a Tokenized."""
        texts = [d.text for d in docs]
        ok, nbytes, nchars = text_sizes(texts)
        text_bytes = int(nbytes.sum())
        guess = text_bytes if self.units == "bytes" else int(text_bytes * TOKENS_PER_BYTE_GUESS)
        self._check_memory(where, text_bytes, guess)
        if self.units == "tokens":
            from .tokenize import get_tokenizer

            del texts
            ready = Tokenized.encode(docs, get_tokenizer(self.tokenizer_path, self.threads), (ok, nbytes, nchars),
                                     release=True)
            return ready.held, None, ready
        # one document's bytes at a time, straight into the shard array: the units are the held text
        arrays = (np.frombuffer(t.encode("utf-8"), dtype=np.uint8) if k else np.zeros(0, np.uint8)
                  for t, k in zip(texts, ok))
        shard = concat(arrays, 0xFF, np.uint8, lengths=nbytes)  # 0xFF never occurs in UTF-8
        held = HeldText(shard.units, shard.starts, nbytes, ok, nchars)
        del texts
        release_text(docs, ok, int(nbytes.sum()))
        return held, shard, None

    def _tokenize(self, held: "HeldText", where: str, ids: tuple[np.ndarray, np.ndarray]) -> tuple[Shard, np.ndarray]:
        """The shard as GPT-2 ids (big-endian, for the suffix sort), and the byte length of every id."""
        from .tokenize import get_tokenizer

        tok = get_tokenizer(self.tokenizer_path, self.threads)
        ok, nbytes = held.ok, held.nbytes
        units, lengths = ids
        shard = Shard.from_lengths(units, lengths)
        byte_len = np.append(tok.byte_len, 0).astype(np.uint8 if tok.byte_len.max() < 256 else np.int64)
        # the ids' bytes must add up to each document's, or spans would map back wrongly
        got = np.zeros(len(ok), dtype=np.int64)
        native = np.dtype(shard.units.dtype).newbyteorder("=")
        for a in range(0, len(ok), 4096):
            lo, hi = int(shard.starts[a]), int(shard.seps[min(a + 4096, len(ok)) - 1]) + 1
            got[a : a + 4096] = np.add.reduceat(byte_len[shard.units[lo:hi].astype(native)],
                                                shard.starts[a : a + 4096] - lo, dtype=np.int64)
        trim_heap(shard.units.nbytes)  # the check's chunk temporaries, before the suffix sort's peak
        if not np.array_equal(got, nbytes):
            bad = int(np.flatnonzero(got != nbytes)[0])
            raise CurateError(f"tokenizer {tok.path}: token bytes do not add up to document {bad} of {where} "
                              f"({got[bad]} vs {nbytes[bad]} bytes)")
        self._check_memory(where, held.text_bytes, int(shard.units.shape[0]), shard.units.dtype.itemsize)
        return shard, byte_len

    def _cut(self, docs: list[Document], held: "HeldText", spans: Runs) -> None:
        """Give every document its text back, cut by `spans` (byte spans of the held buffer, from
        `byte_spans`: all runs mapped and snapped to character boundaries at once, in numpy); only the
        joining of the kept pieces and the decoding are per document."""
        with_runs, firsts = np.unique(spans.doc, return_index=True)  # spans are sorted by document
        todo = dict(zip(with_runs.tolist(), zip(firsts.tolist(), [*firsts[1:].tolist(), len(spans)])))
        mv = memoryview(held.buf)
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


def _bytes_before(units: np.ndarray, byte_len: np.ndarray, q: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """For sorted unit positions `q`: the bytes of all units before each (a running sum, chunk by chunk, so
    no full-size prefix array). Separators weigh 0 bytes and each document's ids add up to its bytes
    (checked in `_tokenize`), so this is the position in the held buffer."""
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


def byte_spans(held: "HeldText", shard: Shard, runs: Runs, byte_len: np.ndarray | None) -> Runs:
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
        gs, ge = b[: len(runs)], b[len(runs):]
    buf = held.buf
    end = held.at[runs.doc] + held.nbytes[runs.doc]  # the document's last byte + 1
    last = max(buf.shape[0] - 1, 0)
    for _ in range(3):  # a UTF-8 character has at most 3 continuation bytes (10xxxxxx)
        gs = gs + ((gs < end) & ((buf[np.minimum(gs, last)] & 0xC0) == 0x80))
        ge = ge - ((ge < end) & ((buf[np.minimum(ge, last)] & 0xC0) == 0x80))
    keep = ge > gs
    return Runs(runs.doc[keep], gs[keep], ge[keep], runs.windows)


def text_sizes(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ok, UTF-8 bytes, characters) per text; `ok` is False for text with lone surrogates (not valid
    text: never held, tokenized or cut; its UTF-8 size counts as 0)."""
    ok = np.ones(len(texts), dtype=bool)
    nbytes = np.zeros(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        try:
            nbytes[i] = len(t) if t.isascii() else len(t.encode("utf-8"))
        except UnicodeEncodeError:
            ok[i] = False
    return ok, nbytes, np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


def release_text(docs: list[Document], ok: np.ndarray, freed: int | None = None) -> None:
    """Let go of the documents' strings (a HeldText has their bytes) and give the freed pages back."""
    for d, k in zip(docs, ok):
        if k:
            d.text = ""
    trim_heap(freed)


class HeldText:
    """A shard's text as one UTF-8 buffer: document i is buf[at[i] : at[i] + nbytes[i]].

    `ok[i]` is False for a document whose text is not valid Unicode (lone surrogates): it is never
    held, tokenized or cut, and keeps its str (nbytes 0). Indexing gives back str (a slice: a list of
    them), so the tokenizer reads a HeldText like a list of texts.
    """

    def __init__(self, buf: np.ndarray, at: np.ndarray, nbytes: np.ndarray, ok: np.ndarray, nchars: np.ndarray) -> None:
        self.buf, self.at, self.nbytes, self.ok, self.nchars = buf, at, nbytes, ok, nchars

    @property
    def text_bytes(self) -> int:
        return int(self.nbytes.sum())

    @classmethod
    def pack(cls, texts: list[str], ok: np.ndarray, nbytes: np.ndarray, nchars: np.ndarray) -> "HeldText":
        at = np.zeros(len(texts), dtype=np.int64)
        if len(texts) > 1:
            np.cumsum(nbytes[:-1], out=at[1:])
        buf = np.empty(int(nbytes.sum()), dtype=np.uint8)
        for t, k, a, n in zip(texts, ok.tolist(), at.tolist(), nbytes.tolist()):
            if k and n:
                buf[a : a + n] = np.frombuffer(t.encode("utf-8"), dtype=np.uint8)
        return cls(buf, at, nbytes, ok, nchars)

    @classmethod
    def pack_releasing(cls, docs: list[Document], ok: np.ndarray, nbytes: np.ndarray, nchars: np.ndarray
                       ) -> "HeldText":
        """`pack` straight from the documents, letting each one's str go as soon as its bytes are in (heap pages
        given back every TRIM_EVERY bytes): the strings and the buffer are never all resident at once."""
        at = np.zeros(len(docs), dtype=np.int64)
        if len(docs) > 1:
            np.cumsum(nbytes[:-1], out=at[1:])
        held = cls(np.empty(int(nbytes.sum()), dtype=np.uint8), at, nbytes, ok, nchars)
        since = i = 0
        try:
            for i, (d, k, a, n) in enumerate(zip(docs, ok.tolist(), at.tolist(), nbytes.tolist())):
                if k:
                    if n:
                        held.buf[a : a + n] = np.frombuffer(d.text.encode("utf-8"), dtype=np.uint8)
                    d.text = ""
                    since += n
                    if since >= TRIM_EVERY:
                        trim_heap()
                        since = 0
        except BaseException:
            held.give_back(docs[:i])  # the documents already let go get their text back
            raise
        trim_heap(since)  # what was let go since the last trim inside the loop
        return held

    @classmethod
    def join(cls, parts: list["HeldText"]) -> "HeldText":
        offsets = np.cumsum([0] + [p.buf.shape[0] for p in parts[:-1]])
        return cls(np.concatenate([p.buf for p in parts]), np.concatenate([p.at + o for p, o in zip(parts, offsets)]),
                   *(np.concatenate([getattr(p, f) for p in parts]) for f in ("nbytes", "ok", "nchars")))

    def split(self, k: int) -> tuple["HeldText", "HeldText"]:
        """The first k documents and the rest (packed buffers only)."""
        cut = int(self.at[k]) if k < len(self) else self.buf.shape[0]
        return (HeldText(self.buf[:cut].copy(), self.at[:k], self.nbytes[:k], self.ok[:k], self.nchars[:k]),
                HeldText(self.buf[cut:].copy(), self.at[k:] - cut, self.nbytes[k:], self.ok[k:], self.nchars[k:]))

    def __len__(self) -> int:
        return int(self.at.shape[0])

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self.data(k).decode("utf-8") for k in range(*i.indices(len(self)))]
        return self.data(i).decode("utf-8")

    def data(self, i: int) -> bytes:
        a = int(self.at[i])
        return self.buf[a : a + int(self.nbytes[i])].tobytes()

    def give_back(self, docs: list[Document]) -> None:
        for i, d in enumerate(docs):
            if self.ok[i]:
                d.text = self.data(i).decode("utf-8")


@dataclass
class Tokenized:
    """Documents tokenized ahead of their shard (shards by tokens), their text held as UTF-8."""

    docs: list[Document]
    held: HeldText
    units: np.ndarray  # big-endian ids, a separator after each document
    lengths: np.ndarray  # ids per document

    @classmethod
    def encode(cls, docs: list[Document], tok: "UnitTokenizer",
               sizes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, release: bool = False) -> "Tokenized":
        """Tokenize the documents from their strings (decoding them back from held bytes would cost time and
        fragment the heap), then hold their text and let the strings go, one document at a time."""
        ok, nbytes, nchars = sizes if sizes is not None else text_sizes([d.text for d in docs])
        units, lengths = tok.encode_shard([d.text if k else "" for d, k in zip(docs, ok)], int(nbytes.sum()) + len(docs))
        if release:
            tok.release()  # the engine's word cache goes before the text is packed (see UnitTokenizer.release)
        held = HeldText.pack_releasing(docs, ok, nbytes, nchars)
        return cls(docs, held, units, lengths)

    @classmethod
    def join(cls, parts: list["Tokenized"]) -> "Tokenized":
        if len(parts) == 1:
            return parts[0]
        return cls([d for p in parts for d in p.docs], HeldText.join([p.held for p in parts]),
                   np.concatenate([p.units for p in parts]), np.concatenate([p.lengths for p in parts]))

    def split(self, k: int) -> tuple["Tokenized", "Tokenized"]:
        """The first k documents and the rest."""
        cut = int(self.lengths[:k].sum()) + k  # their ids and separators end here
        a, b = self.held.split(k)
        return (Tokenized(self.docs[:k], a, self.units[:cut].copy(), self.lengths[:k]),
                Tokenized(self.docs[k:], b, self.units[cut:].copy(), self.lengths[k:]))
