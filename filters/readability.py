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
`mcalpine_eflaw_reference` is the direct transcription above. tests/test_filters_readability.py
checks both against textstat itself on every sample document, against each other on a Unicode
fuzz, and on hand-worked examples. Lower is easier to read; GneissWeb keeps category docs below 70 and other
docs below 30.
"""

from __future__ import annotations

import re

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
