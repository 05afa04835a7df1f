"""A shard's text held as one UTF-8 buffer while exact-substring dedup works on it, and documents
tokenized ahead of their shard (shards by tokens).

While the suffix array is built, the documents' Python strings are let go (a `str` costs 2-4 bytes
per character once a document has one non-ASCII character) and their text lives here once, as UTF-8;
each document gets its text back after the cut (`HeldText.give_back`, or the step's cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from datatrove.data import Document

from .heap import trim_heap

if TYPE_CHECKING:
    from .tokenize import UnitTokenizer

TRIM_EVERY = 16 * 2**20  # bytes of text packed between two heap trims while the strings are let go


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
    def pack(cls, texts: list[str], ok: np.ndarray, nbytes: np.ndarray, nchars: np.ndarray) -> HeldText:
        at = np.zeros(len(texts), dtype=np.int64)
        if len(texts) > 1:
            np.cumsum(nbytes[:-1], out=at[1:])
        buf = np.empty(int(nbytes.sum()), dtype=np.uint8)
        for t, k, a, n in zip(texts, ok.tolist(), at.tolist(), nbytes.tolist()):
            if k and n:
                buf[a : a + n] = np.frombuffer(t.encode("utf-8"), dtype=np.uint8)
        return cls(buf, at, nbytes, ok, nchars)

    @classmethod
    def pack_releasing(cls, docs: list[Document], ok: np.ndarray, nbytes: np.ndarray, nchars: np.ndarray) -> HeldText:
        """`pack` straight from the documents, letting each one's str go as soon as its bytes are in (heap pages
        given back every TRIM_EVERY bytes): the strings and the buffer are never all resident at once."""
        at = np.zeros(len(docs), dtype=np.int64)
        if len(docs) > 1:
            np.cumsum(nbytes[:-1], out=at[1:])
        held = cls(np.empty(int(nbytes.sum()), dtype=np.uint8), at, nbytes, ok, nchars)
        since = i = 0
        try:
            for i, (d, k, a, n) in enumerate(zip(docs, ok.tolist(), at.tolist(), nbytes.tolist())):  # noqa: B007 (i: read when a document fails)
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
    def join(cls, parts: list[HeldText]) -> HeldText:
        offsets = np.cumsum([0] + [p.buf.shape[0] for p in parts[:-1]])
        return cls(
            np.concatenate([p.buf for p in parts]),
            np.concatenate([p.at + o for p, o in zip(parts, offsets)]),
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("nbytes", "ok", "nchars")),
        )

    def split(self, k: int) -> tuple[HeldText, HeldText]:
        """The first k documents and the rest (packed buffers only)."""
        cut = int(self.at[k]) if k < len(self) else self.buf.shape[0]
        return (
            HeldText(self.buf[:cut].copy(), self.at[:k], self.nbytes[:k], self.ok[:k], self.nchars[:k]),
            HeldText(self.buf[cut:].copy(), self.at[k:] - cut, self.nbytes[k:], self.ok[k:], self.nchars[k:]),
        )

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
    def encode(
        cls,
        docs: list[Document],
        tok: UnitTokenizer,
        sizes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        release: bool = False,
    ) -> Tokenized:
        """Tokenize the documents from their strings (decoding them back from held bytes would cost time and
        fragment the heap), then hold their text and let the strings go, one document at a time."""
        ok, nbytes, nchars = sizes if sizes is not None else text_sizes([d.text for d in docs])
        units, lengths = tok.encode_shard(
            [d.text if k else "" for d, k in zip(docs, ok)], int(nbytes.sum()) + len(docs)
        )
        if release:
            tok.release()  # the engine's word cache goes before the text is packed (see UnitTokenizer.release)
        held = HeldText.pack_releasing(docs, ok, nbytes, nchars)
        return cls(docs, held, units, lengths)

    @classmethod
    def join(cls, parts: list[Tokenized]) -> Tokenized:
        if len(parts) == 1:
            return parts[0]
        return cls(
            [d for p in parts for d in p.docs],
            HeldText.join([p.held for p in parts]),
            np.concatenate([p.units for p in parts]),
            np.concatenate([p.lengths for p in parts]),
        )

    def split(self, k: int) -> tuple[Tokenized, Tokenized]:
        """The first k documents and the rest."""
        cut = int(self.lengths[:k].sum()) + k  # their ids and separators end here
        a, b = self.held.split(k)
        return (
            Tokenized(self.docs[:k], a, self.units[:cut].copy(), self.lengths[:k]),
            Tokenized(self.docs[k:], b, self.units[cut:].copy(), self.lengths[k:]),
        )
