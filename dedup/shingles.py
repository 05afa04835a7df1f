"""MinHash shingles: datatrove's text normalization for many texts at once, in numpy over their UTF-8 bytes
(`simplify_joined`, the same output as datatrove's `simplify_text`), and 64-bit hashes of every word n-gram
of many texts at once, in numpy (`shingle_hashes_joined`).

Each word is hashed once (a polynomial over its bytes), each n-gram of word hashes combined and mixed
into one 64-bit shingle (no n-gram strings are built). Not datatrove's or datasketch's hash functions;
the MinHash signatures over these shingles (rensa, in stages/minhash.py) estimate the same Jaccard
similarity.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import regex
from datatrove.utils.text import DEF_TEXT_NORM_CONFIG, NUMBERS_PATTERN, PUNCTUATION_TRANS, simplify_text

__all__ = ["shingle_hashes", "shingle_hashes_joined", "simplify", "simplify_arrow", "simplify_joined"]

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_BW = 0x100000001B3  # odd base of the word-bytes polynomial
_BN = np.uint64(0x9E3779B97F4A7C15)  # n-gram combination

_NUMBERS = r"\p{Nd}+([.,،٫⎖⎗⎘]{1}\p{Nd}+)?"  # datatrove's NUMBERS_PATTERN, which simplify_joined implements
_NUMBER_SEPARATORS = ".,،٫⎖⎗⎘"
_DIGIT_RE = regex.compile(r"\p{Nd}")  # the same module and property as datatrove's pattern (its Unicode tables)
_PUNCT_CPS = frozenset(c for c, v in PUNCTUATION_TRANS.items() if v == ord(" "))

# classes of a character (bits); for a character of several bytes every byte carries its class
_WS = 1  # datatrove's punctuation or whitespace (str.isspace, the test of re's \s, str.split and str.strip)
_DIGIT = 2  # regex's \p{Nd}
_SEP = 4  # a number separator
_DROP = 8  # nothing of it is left after NFD and nonspacing-mark removal
_SUBST = 16  # lowercasing, NFD and mark removal make it other characters (`_CodePoints.repl`)
_EXACT = 32  # canonical reordering could move a combining character of its NFD that is no mark
_SIGMA = 64  # capital sigma: lowercased by context (final sigma)
_END = 128  # the separator between two texts (set by position)


def _classify(cp: int) -> tuple[int, bytes | None]:
    """One code point's class bits and, for _SUBST, what it becomes (UTF-8), by datatrove's definitions
    applied to its lowercase (str.lower maps each character on its own, except capital sigma: tested)."""
    ch = chr(cp)
    if cp == 0x03A3:
        return _SIGMA, None
    low = ch.lower()
    if len(low) > 1:  # U+0130 only: "i" + a combining dot
        if any(_classify(ord(x))[0] & (_WS | _DIGIT | _SEP | _EXACT) for x in low):
            return _EXACT, None
        kept = "".join(x for x in unicodedata.normalize("NFD", low) if unicodedata.category(x) != "Mn")
        return (_SUBST, kept.encode("utf-8", "surrogatepass")) if kept else (_DROP, None)
    if _DIGIT_RE.fullmatch(low):  # numbers go first: a digit that is also punctuation (fullwidth 1) is a digit
        return _DIGIT, None
    cls = _SEP if low in _NUMBER_SEPARATORS else 0
    if ord(low) in _PUNCT_CPS or low.isspace():
        return cls | _WS, None  # replaced before NFD: what it decomposes to is moot
    cat = unicodedata.category
    nfd = unicodedata.normalize("NFD", low)
    if nfd == low:  # most characters: no decomposition
        if unicodedata.combining(low) and cat(low) != "Mn":
            cls |= _EXACT
        if cat(low) == "Mn":
            return cls | _DROP, None
        return (cls | _SUBST, low.encode("utf-8", "surrogatepass")) if low != ch else (cls, None)
    if any(unicodedata.combining(x) and cat(x) != "Mn" for x in nfd):
        cls |= _EXACT
    kept = "".join(x for x in nfd if cat(x) != "Mn")
    if not kept:
        return cls | _DROP, None
    if kept != ch:
        return cls | _SUBST, kept.encode("utf-8", "surrogatepass")
    return cls, None


def _ascii_tables() -> tuple[bytes, bytes]:
    """(class, byte it becomes) of each byte: ASCII lowercased, its whitespace and punctuation a space
    (bytes >= 0x80 are set per character, from _CodePoints)."""
    cls = np.zeros(256, dtype=np.uint8)
    to = np.arange(256, dtype=np.uint8)
    for b in range(128):
        cls[b] = _classify(b)[0] & ~_SUBST  # lowercasing ASCII is the byte table below
        to[b] = 0x20 if cls[b] & _WS else ord(chr(b).lower())
    return cls.tobytes(), to.tobytes()


class _CodePoints:
    """Classes of the non-ASCII code points seen so far: each is classified (`_classify`) the first time a
    batch holds it, so a process pays for the few thousand characters its text uses, not for all 1.1M."""

    def __init__(self) -> None:
        self.known = np.zeros(0x110000, dtype=bool)
        self.cls = np.zeros(0x110000, dtype=np.uint8)
        self.repl: dict[int, bytes] = {}

    def classes(self, cps: np.ndarray) -> np.ndarray:
        new = cps[~self.known[cps]]
        if new.shape[0]:
            for cp in np.unique(new).tolist():
                self.cls[cp], r = _classify(cp)
                if r is not None:
                    self.repl[cp] = r
            self.known[new] = True
        return self.cls[cps]


_ASCII, _ASCII_TO = _ascii_tables()
_CPS = _CodePoints()


def simplify(text: str) -> str:
    """datatrove's `simplify_text` with its default config, the same output (tested)."""
    return simplify_joined([text]).tobytes().decode("utf-8", "surrogatepass")


def _shift_right(m: np.ndarray) -> np.ndarray:
    """m[i - 1] at i (zero at 0)."""
    out = np.empty_like(m)
    out[0] = 0
    out[1:] = m[:-1]
    return out


def _char_len(lead: np.ndarray) -> np.ndarray:
    """UTF-8 length of the characters starting with these bytes."""
    return 1 + (lead >= 0xC0) + (lead >= 0xE0) + (lead >= 0xF0)


def simplify_joined(texts: Sequence[str]) -> np.ndarray:
    """`"\\n".join(simplify_text(t) for t in texts)` as UTF-8 ('surrogatepass', a uint8 array), for all texts
    at once (see `_simplify`)."""
    parts = [t.encode("utf-8", "surrogatepass") for t in texts]
    lens = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    return _simplify(bytearray(b"\n").join(parts), lens, texts.__getitem__)


def simplify_arrow(texts: pa.Array) -> np.ndarray:
    """`simplify_joined` of an Arrow string array (the handoff's text column) from its UTF-8 buffer, without
    making Python strings (but of the rare texts `_simplify` hands to str.lower or datatrove)."""
    if texts.null_count:
        raise ValueError("a text is null")
    n = len(texts)
    wide = pa.types.is_large_string(texts.type)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[texts.offset : texts.offset + n + 1]
    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    body = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    joined = np.insert(body, offsets[1:-1] - offsets[0], np.uint8(0x0A))
    return _simplify(bytearray(joined.data), np.diff(offsets).astype(np.int64), lambda i: texts[i].as_py())


def _simplify(joined: bytearray, lens: np.ndarray, text: Callable[[int], str]) -> np.ndarray:
    """The texts of UTF-8 lengths `lens`, joined by newlines in `joined` (reused), simplified; `text(i)` is
    text i as a str, for the texts that go another way.

    datatrove's steps in its order (lowercase; numbers to 0; punctuation to spaces; whitespace runs to one
    space, stripped; NFD; nonspacing marks removed; stripped), each decided per byte: ASCII bytes from
    256-entry tables, the (few) other characters from their code point's class, so one numpy pass does each
    step for every text. Lowercasing, NFD and mark removal are a replacement per character (str.lower maps
    each character on its own but capital sigma: a text holding one is lowercased by str.lower first), except
    where canonical reordering could move a combining character that is no mark (25 code points, e.g. musical
    symbols): a text holding one of those goes through datatrove's `simplify_text` itself.
    """
    assert NUMBERS_PATTERN.pattern == _NUMBERS, "datatrove's number pattern changed: update shingles.py"
    assert not (DEF_TEXT_NORM_CONFIG.norm_weekdays or DEF_TEXT_NORM_CONFIG.norm_monthnames)
    n = len(joined)
    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    ends = np.cumsum(lens + 1) - 1  # the separators, then n
    raw = np.frombuffer(joined, dtype=np.uint8)
    c = np.frombuffer(joined.translate(_ASCII), dtype=np.uint8)  # bytes.translate: 3x numpy's table lookup
    data = np.frombuffer(joined.translate(_ASCII_TO), dtype=np.uint8)
    c[ends[:-1]] = _END  # no text holds a separator: a newline inside a text is whitespace, replaced below
    data[ends[:-1]] = 0x0A
    present = int(np.bitwise_or.reduce(c))
    drop = np.zeros(n, dtype=bool)
    subst = ws_at = redo = None
    lead = np.flatnonzero(raw >= 0xC0) if not joined.isascii() else np.zeros(0, dtype=np.int64)
    if lead.shape[0]:  # the first bytes of the characters beyond ASCII
        b0 = raw[lead].astype(np.uint32)
        size = _char_len(b0)
        tail = [raw[np.minimum(lead + j, n - 1)].astype(np.uint32) & 0x3F for j in (1, 2, 3)]
        cp = np.where(
            size == 2,
            ((b0 & 0x1F) << 6) | tail[0],
            np.where(
                size == 3,
                ((b0 & 0x0F) << 12) | (tail[0] << 6) | tail[1],
                ((b0 & 0x07) << 18) | (tail[0] << 12) | (tail[1] << 6) | tail[2],
            ),
        )
        cc = _CPS.classes(cp)
        special = np.flatnonzero(cc)
        if special.shape[0]:
            cc, at, size, cp = cc[special], lead[special], size[special], cp[special]
            if (cc & (_EXACT | _SIGMA)).any():  # those texts are redone below; the rest is not affected
                redo = at[(cc & _EXACT) != 0], at[(cc & _SIGMA) != 0]
            present |= int(np.bitwise_or.reduce(cc))
            c[np.repeat(at, size) + _ranges(size)] = np.repeat(cc, size)
            if present & _SUBST:
                sub = (cc & _SUBST) != 0
                subst = at[sub], size[sub], cp[sub]
            ws_at = at[(cc & _WS) != 0]
    if present & _DIGIT:  # a number (digits, optionally one separator and digits) becomes one "0"
        d = (c & _DIGIT) != 0  # (a digit is never whitespace: _classify)
        change = np.empty(n + 1, dtype=bool)
        change[0], change[n] = d[0], d[-1]
        np.not_equal(d[1:], d[:-1], out=change[1:n])
        edges = np.flatnonzero(change)
        starts, stops = edges[0::2], edges[1::2]  # stops: one past each run
        drop |= d
        lead_digits = starts
        if present & _SEP and starts.shape[0] > 1:
            # run k continues run k-1's number if one separator lies between them, unless run k-1 was itself
            # the continuation of run k-2 (the regex resumes after a match): every other link of a chain is taken
            gap = stops[:-1]
            linked = np.zeros(starts.shape[0], dtype=bool)
            linked[1:] = ((c[gap] & _SEP) != 0) & (gap + _char_len(raw[gap]) == starts[1:])
            if linked.any():
                k = np.arange(starts.shape[0])
                second = ((k - np.maximum.accumulate(np.where(linked, 0, k))) & 1).astype(bool)
                lead_digits = starts[~second]
                sep_at, sep_to = gap[second[1:]], starts[second]
                taken = np.repeat(sep_at, sep_to - sep_at) + _ranges(sep_to - sep_at)
                drop[taken] = True
                c[taken] = 0  # inside a number: no whitespace
        drop[lead_digits] = False
        data[lead_digits] = ord("0")
    if present & _WS:  # each run of whitespace (punctuation included) -> one space, none at a text's start or end
        ws = (c & _WS) != 0
        first = ws & ~_shift_right(ws) & ~_shift_right((c & _END) != 0)
        first[0] = False  # a run at the very start
        drop |= ws ^ first
        # a run that ends a text keeps nothing: step back from each text's end to the run's first byte
        last = ends[ends > 0] - 1
        at = last[ws[last]]
        while at.shape[0]:
            more = (at > 0) & ws[np.maximum(at - 1, 0)] & ~first[at]
            drop[at[~more]] = True
            at = at[more] - 1
        if ws_at is not None and ws_at.shape[0]:  # the first byte of a non-ASCII whitespace character
            data[ws_at[first[ws_at]]] = 0x20
    if present & _DROP:
        drop |= (c & _DROP) != 0
    inserts = _substitute(data, drop, *subst) if subst is not None else None
    # dropped bytes become 0xFF (never in UTF-8) and bytes.translate deletes them: 4x numpy's data[keep]
    np.bitwise_or(data, drop.view(np.uint8) * np.uint8(0xFF), out=data)
    if inserts is not None:  # replacements longer than their character: the rest goes in after it
        out = np.insert(data, *inserts).tobytes().translate(None, b"\xff")
    else:
        out = bytes(data.data).translate(None, b"\xff")
    if redo is not None:
        out = _redo(out, ends, *redo, text)
    return _strip(np.frombuffer(out, dtype=np.uint8))


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """0..len-1 for each length, concatenated."""
    total = int(lengths.sum())
    return np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _substitute(
    data: np.ndarray, drop: np.ndarray, at: np.ndarray, size: np.ndarray, cp: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Write each character's replacement over its bytes, drop the bytes it leaves unused, and return what
    does not fit (positions to insert before, bytes) for the rest."""
    uniq, inv = np.unique(cp, return_inverse=True)
    reps = [_CPS.repl[int(u)] for u in uniq.tolist()]
    rlen = np.fromiter(map(len, reps), dtype=np.int64, count=len(reps))
    rflat = np.frombuffer(b"".join(reps), dtype=np.uint8)
    rstart = np.cumsum(rlen) - rlen
    r, s = rlen[inv], rstart[inv]
    fit = np.minimum(r, size)
    j = _ranges(fit)
    data[np.repeat(at, fit) + j] = rflat[np.repeat(s, fit) + j]
    unused = size - fit
    drop[np.repeat(at + fit, unused) + _ranges(unused)] = True
    over = r - fit
    if not over.any():
        return None
    return np.repeat(at + size, over), rflat[np.repeat(s + fit, over) + _ranges(over)]


def _redo(
    out: bytes, ends: np.ndarray, exact_at: np.ndarray, sigma_at: np.ndarray, text: Callable[[int], str]
) -> bytes:
    """`out` with the texts holding a byte at `exact_at` replaced by datatrove's simplify_text of them, and
    those holding one at `sigma_at` by simplify_joined of them lowercased by str.lower first."""
    exact = set(np.searchsorted(ends, exact_at).tolist())
    sigma = sorted(set(np.searchsorted(ends, sigma_at).tolist()) - exact)
    parts = out.split(b"\n")  # a simplified text holds no newline
    for i in exact:
        parts[i] = simplify_text(text(i)).encode("utf-8", "surrogatepass")
    if sigma:
        for i, p in zip(sigma, simplify_joined([text(i).lower() for i in sigma]).tobytes().split(b"\n")):
            parts[i] = p
    return b"\n".join(parts)


def _strip(b: np.ndarray) -> np.ndarray:
    """Spaces at a text's start or end (left where marks were removed) go, as datatrove's final strip()."""
    if b.shape[0] == 0:
        return b
    nl = np.flatnonzero(b == 0x0A)  # the separators: no newline is left inside a text
    near = np.concatenate((nl - 1, nl + 1, [0, b.shape[0] - 1]))
    near = near[(near >= 0) & (near < b.shape[0])]
    if not (b[near] == 0x20).any():
        return b
    sp = b == 0x20
    idx = np.arange(b.shape[0])
    left = np.maximum.accumulate(np.where(sp, -1, idx))  # the last non-space at or before each position
    right = np.minimum.accumulate(np.where(sp, b.shape[0], idx)[::-1])[::-1]  # the next one at or after it
    bl = np.concatenate((b, [0x0A]))
    drop = sp & ((left < 0) | (bl[np.maximum(left, 0)] == 0x0A) | (bl[right] == 0x0A))
    return b[~drop]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every input bit reaches every output bit."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


class _Powers:
    """B**i and B**-i mod 2**64 for i < n, kept and grown as batches need (recomputing them per batch was a
    third of the hashing time)."""

    def __init__(self) -> None:
        self.up = self.down = np.ones(1, dtype=np.uint64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.up.shape[0] < n:
            size = -(-n // 2**18) * 2**18  # whole blocks of 256 Ki: a few sizes for batches of about the same size
            self.up, self.down = _geometric(_BW, size), _geometric(pow(_BW, -1, 1 << 64), size)
        return self.up, self.down


def _geometric(base: int, n: int, block: int = 4096) -> np.ndarray:
    """base**i mod 2**64 for i < n: one short cumprod per block's offset and one for within a block, then a
    product of the two (a cumprod over all n is sequential and 10x slower)."""

    def powers(b: int, k: int) -> np.ndarray:
        out = np.full(k, b, dtype=np.uint64)
        out[:1] = 1
        return np.cumprod(out, dtype=np.uint64)

    blocks = -(-n // block)
    return (powers(pow(base, block, 1 << 64), blocks)[:, None] * powers(base, block)[None, :]).ravel()[:n]


_POWERS = _Powers()
_BYTE_TABLE = np.random.default_rng(0xB17E).integers(1, 2**63, 256, dtype=np.uint64)


def shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of each (simplified) text, all at once in numpy (see
    `shingle_hashes_joined`; the texts are joined with newlines)."""
    data = np.frombuffer("\n".join(texts).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    return shingle_hashes_joined(data, len(texts), ngram)


def shingle_hashes_joined(data: np.ndarray, n_texts: int, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of each of `n_texts` simplified texts joined by newlines (UTF-8).

    Returns (flat hashes, offsets): text i's shingles are flat[offsets[i] : offsets[i + 1]]. A text of
    fewer than `ngram` words has none (as in datatrove). Words are split at spaces (a simplified text has
    no other whitespace; the empty word between two spaces is none, as in str.split)."""
    offsets = np.zeros(n_texts + 1, dtype=np.uint64)
    n = data.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.uint64), offsets
    cut = np.flatnonzero(data <= 0x20)  # a simplified text's only bytes <= 0x20: spaces and the newlines
    starts = np.empty(cut.shape[0] + 1, dtype=np.int64)
    starts[0] = 0
    np.add(cut, 1, out=starts[1:])
    ends = np.empty_like(starts)
    ends[:-1] = cut
    ends[-1] = n
    doc = np.zeros(starts.shape[0], dtype=np.int64)  # text of each word: newlines before its start
    np.cumsum(data[cut] == 0x0A, out=doc[1:])
    real = ends > starts  # an empty text leaves an empty "word" between two newlines
    if not real.all():
        starts, ends, doc = starts[real], ends[real], doc[real]
    # word hash: sum of T[byte] * B**i over its bytes, from one prefix sum mod 2**64 (B odd, so B**-i exists)
    up, down = _POWERS.get(n + 1)
    pre = np.empty(n + 1, dtype=np.uint64)
    pre[0] = 0
    t = _BYTE_TABLE[data]  # (a quarter faster than np.take)
    np.multiply(t, up[:n], out=t)
    np.cumsum(t, out=pre[1:])
    del t
    words = pre[ends]
    words -= pre[starts]
    del pre
    words *= down[starts]
    words += (ends - starts).astype(np.uint64)
    _mix(words)
    m = words.shape[0] - ngram + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64), offsets
    sh = words[:m].copy()
    for j in range(1, ngram):
        sh *= _BN
        sh += words[j : j + m]
    _mix(sh)
    valid = doc[ngram - 1 :] == doc[:m]  # the n-gram stays inside one text
    sh, sdoc = sh[valid], doc[:m][valid]
    np.cumsum(np.bincount(sdoc, minlength=n_texts), out=offsets[1:])
    return sh, offsets
