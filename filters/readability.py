"""McAlpine-EFLAW readability, computed exactly as textstat 0.7.10 does, without textstat.

    EFLAW = (words + miniwords) / sentences

with textstat's own tokenization (reimplemented here so the pipeline needs neither textstat nor
its NLTK dependency, and because per-call caches in textstat grow with every document):

- words: remove apostrophes that do not start an English contraction ending (t, s, d, ve, ll,
  re), remove every other character that is not a word character, whitespace or apostrophe,
  then split on whitespace;
- miniwords: remove every non-word, non-space character (apostrophes too), split, and count the
  words of at most 3 characters;
- sentences: the matches of `\\b[^.!?]+[.!?]*`, minus those with at most 2 words, at least 1;
  an empty text has 0 sentences and EFLAW 0.0.

`mcalpine_eflaw` computes the same counts in fewer passes (see `_fast_counts`, ~2x faster);
`mcalpine_eflaw_batch` computes them for a batch of documents in numpy passes over the batch's
code points (~4x faster again); `mcalpine_eflaw_reference` is the direct transcription above.
tests/filters/test_readability.py checks all three against textstat itself on every sample
document, against each other on a Unicode fuzz, and on hand-worked examples. Lower is easier to
read; GneissWeb keeps category docs below 70 and other docs below 30.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_CONTRACTION_ENDINGS = r"[tsd]|ve|ll|re"
_NONCONTRACTION_APOSTROPHE = re.compile(r"\'(?!" + _CONTRACTION_ENDINGS + ")")
_PUNCT_KEEP_APOSTROPHE = re.compile(r"[^\w\s\']")
_PUNCT_ALL = re.compile(r"[^\w\s]")
_SENTENCE = re.compile(r"\b[^.!?]+[.!?]*", re.UNICODE)


def count_words(text: str) -> int:
    """textstat.lexicon_count(text) with its defaults (punctuation removed, contractions kept)."""
    return len(_PUNCT_KEEP_APOSTROPHE.sub("", _NONCONTRACTION_APOSTROPHE.sub("", text)).split())


def count_miniwords(text: str, max_size: int = 3) -> int:
    return sum(1 for w in _PUNCT_ALL.sub("", text).split() if len(w) <= max_size)


def count_sentences(text: str) -> int:
    if not text:
        return 0
    sentences = _SENTENCE.findall(text)
    ignored = sum(1 for s in sentences if count_words(s) <= 2)
    return max(1, len(sentences) - ignored)


def mcalpine_eflaw_reference(text: str) -> float:
    """(words + words of <= 3 characters) / sentences, textstat's steps one by one (the reference)."""
    n_sentences = count_sentences(text)
    if n_sentences == 0:
        return 0.0
    return (count_words(text) + count_miniwords(text)) / n_sentences


# Why the fast path counts the same (every character class is Python's Unicode \w / \s, and
# str.split() splits on exactly the characters \s matches; the test checks both over all code points):
# - removing characters that are not \w or \s never moves whitespace, so a whitespace-separated
#   chunk survives textstat's removals iff it holds a \w character (a kept contraction apostrophe is
#   always followed by a letter of its chunk). Words = chunks of the text with every non-\w non-\s
#   character removed; miniwords = those of <= 3 characters. Removing ".!?" too does not change that.
# - a sentence (`\b[^.!?]+[.!?]*`) always starts at the first \w character after the previous
#   sentence and ends after the next run of [.!?] (or at the end), so removing characters that are
#   not \w, \s or [.!?] keeps every sentence's words. In that text a sentence body holds only \w
#   runs and whitespace, and one regex tells bodies of <= 2 words (group 1) from longer ones.
_PUNCT_KEEP_ENDS = re.compile(r"[^\w\s.!?]")
_SHORT_OR_SENTENCE = re.compile(r"(\w+(?:\s+\w+)?\s*(?=[.!?]|\Z))|\w[^.!?]*")


def _fast_counts(text: str) -> tuple[int, int, int]:
    """(words, miniwords, sentences) equal to count_words, count_miniwords, count_sentences."""
    if not text:
        return 0, 0, 0
    kept = _PUNCT_KEEP_ENDS.sub("", text)
    bodies = _SHORT_OR_SENTENCE.findall(kept)  # "" for a sentence of >= 3 words, the body otherwise
    sentences = max(1, bodies.count(""))
    words = kept.replace(".", "").replace("!", "").replace("?", "").split()
    return len(words), sum(1 for w in words if len(w) <= 3), sentences


def mcalpine_eflaw(text: str) -> float:
    """(words + words of <= 3 characters) / sentences; 0.0 for a text with no sentence."""
    words, mini, n_sentences = _fast_counts(text)
    if n_sentences == 0:
        return 0.0
    return (words + mini) / n_sentences


# The batch kernel counts the same things as `_fast_counts` on an array of character classes, looked up
# per code point in a table made by the `re` module itself (so \w and \s are exactly re's):
# - words: `_fast_counts` splits the text without [^\w\s] characters; with the removed characters
#   (classes END and DEL) dropped from the array, a word is a run of WORD, and a miniword one of <= 3;
# - sentences: with DEL dropped, a sentence body is what lies between runs of END, and it holds
#   >= 3 words (runs of WORD cut by SPACE or END) iff it has a third word. Each document is framed by
#   BREAK entries, which end words and sentences, so one array holds the whole batch.
_WORD, _SPACE, _END, _DEL, _BREAK = 0, 1, 2, 3, 4
_BREAK_CODE = 0x110000  # one past the last code point: never in a text
_classes: np.ndarray | None = None
_BATCH_CHARS = 1 << 18  # characters per numpy pass: its arrays stay below ~5 MB
_LONG_DOC = 1 << 20  # a longer document is counted alone, by `_fast_counts` (rare; bounds a pass to ~20 MB)


def _class_table() -> np.ndarray:
    """The class of every code point (and of `_BREAK_CODE`), built once per process (~0.05 s)."""
    global _classes
    if _classes is None:
        table = np.full(0x110001, _DEL, np.uint8)
        for block in range(0, 0x110000, 0x10000):  # a block at a time: a few MB less at the peak
            chars = np.arange(block, block + 0x10000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
            for cls, other in ((_WORD, r"\W+"), (_SPACE, r"\S+")):
                kept = re.sub(other, "", chars).encode("utf-32-le", "surrogatepass")
                table[np.frombuffer(kept, "<u4")] = cls
        table[[ord(c) for c in ".!?"]] = _END
        table[_BREAK_CODE] = _BREAK
        _classes = table
    return _classes


def _eflaw_pass(texts: Sequence[str]) -> list[float]:
    n = len(texts)
    lens = np.fromiter(map(len, texts), np.int64, n)
    frames = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=frames[1:])
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), "<u4")
    table = _class_table()
    cls = np.insert(np.take(table, codes), frames, _BREAK)  # a BREAK before each document and after the last
    # sentences (>= 3 words between runs of END), over the text without DEL
    kept = cls[cls != _DEL]
    word = kept == _WORD
    starts = np.flatnonzero(word[1:] > word[:-1]) + 1  # kept[0] is a BREAK
    sentence = np.searchsorted(np.flatnonzero(kept >= _END), starts)  # END or BREAK before each word
    third = np.zeros(len(starts), bool)  # the third word of its sentence
    third[2:] = sentence[2:] == sentence[:-2]
    third[3:] &= sentence[3:] != sentence[:-3]
    per_doc = np.searchsorted(starts, np.flatnonzero(kept == _BREAK))
    cum = np.zeros(len(starts) + 1, np.int64)
    np.cumsum(third, out=cum[1:])
    sentences = np.diff(cum[per_doc])
    # words and miniwords, over the text without DEL and END
    kept = kept[kept != _END]
    word = kept == _WORD
    starts = np.flatnonzero(word[1:] > word[:-1]) + 1
    mini = (np.flatnonzero(word[:-1] > word[1:]) - starts) < 3  # run ends minus starts: length - 1
    per_doc = np.searchsorted(starts, np.flatnonzero(kept == _BREAK))
    cum = np.zeros(len(starts) + 1, np.int64)
    np.cumsum(mini, out=cum[1:])
    # the same int / int divisions as mcalpine_eflaw: the same floats
    return [
        (w + m) / (s or 1) if t else 0.0
        for t, w, m, s in zip(texts, np.diff(per_doc).tolist(), np.diff(cum[per_doc]).tolist(), sentences.tolist())
    ]


def mcalpine_eflaw_batch(texts: Sequence[str]) -> list[float]:
    """`mcalpine_eflaw` of each text (the same floats), computed for the batch at once."""
    out: list[float] = []
    group: list[str] = []
    chars = 0
    for t in texts:
        if len(t) > _LONG_DOC:
            out += _eflaw_pass(group) if group else []
            out.append(mcalpine_eflaw(t))
            group, chars = [], 0
            continue
        if group and chars + len(t) > _BATCH_CHARS:
            out += _eflaw_pass(group)
            group, chars = [], 0
        group.append(t)
        chars += len(t)
    if group:
        out += _eflaw_pass(group)
    return out
