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

tests/test_filters_readability.py checks this against textstat itself on real documents and on
hand-worked examples. Lower is easier to read; GneissWeb keeps category docs below 70 and other
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


def mcalpine_eflaw(text: str) -> float:
    """(words + words of <= 3 characters) / sentences; 0.0 for a text with no sentence."""
    n_sentences = count_sentences(text)
    if n_sentences == 0:
        return 0.0
    return (count_words(text) + count_miniwords(text)) / n_sentences
