"""What exact_doc_dedup hashes: a document's text under its `normalize` option (NORMALIZERS)."""

from __future__ import annotations

import unicodedata

from datatrove.data import Document


def text_as_is(doc: Document) -> str:
    return doc.text


def text_whitespace(doc: Document) -> str:
    """NFC, whitespace runs collapsed to one space, stripped: `re.sub(r"\\s+", " ", t).strip()` (str.split,
    str.strip and re's `\\s` share one Unicode whitespace test; tests/dedup/test_stages.py checks), ~5x faster."""
    return " ".join(unicodedata.normalize("NFC", doc.text).split())


def text_whitespace_lower(doc: Document) -> str:
    return text_whitespace(doc).lower()


NORMALIZERS = {"none": text_as_is, "whitespace": text_whitespace, "whitespace_lower": text_whitespace_lower}
