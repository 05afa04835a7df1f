"""Exact-document dedup across all tasks of a run: hash of normalized text, one copy kept.

Built on datatrove's three exact-dedup steps (signatures per task -> one finder task that sorts all
hashes -> filter per task), planned like MinHash: barrier, a signatures side job over the handed-off
documents, a finder job, then `ExactDocFilter` in the continuing job. Which copy survives is
datatrove's rule: the lowest document index among equal hashes (within one task that is the first
in input order; across tasks the tie between equal indexes is arbitrary but deterministic).
"""

from __future__ import annotations

import unicodedata
from typing import Iterable, Iterator

from datatrove.data import Document
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter

from curate.core.steps import CurateStep


def text_as_is(doc: Document) -> str:
    return doc.text


def text_whitespace(doc: Document) -> str:
    """NFC, whitespace runs collapsed to one space, stripped: `re.sub(r"\\s+", " ", t).strip()` (str.split,
    str.strip and re's `\\s` share one Unicode whitespace test; tests/test_dedup_stages.py checks), ~5x faster."""
    return " ".join(unicodedata.normalize("NFC", doc.text).split())


def text_whitespace_lower(doc: Document) -> str:
    return text_whitespace(doc).lower()


NORMALIZERS = {"none": text_as_is, "whitespace": text_whitespace, "whitespace_lower": text_whitespace_lower}


def exact_config(normalize: str) -> ExactDedupConfig:
    return ExactDedupConfig(content_getter=NORMALIZERS[normalize])


class _DropSink:
    """Stands in for datatrove's exclusion writer: every excluded doc is a curate drop with a reason."""

    def __init__(self, step: CurateStep, reason: str) -> None:
        self.step, self.reason = step, reason

    def __enter__(self) -> "_DropSink":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, doc: Document, rank: int = 0, **kwargs: object) -> None:
        self.step.drop(doc, self.reason)


class ExactDocFilter(CurateStep):
    name = "exact doc filter"

    def __init__(self, dups_folder: str, normalize: str, label: str | None = None) -> None:
        super().__init__(label)
        self.dups_folder = dups_folder
        self.normalize = normalize

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        inner = ExactDedupFilter(self.dups_folder, exact_config(self.normalize), exclusion_writer=_DropSink(self, "exact_duplicate"))
        for doc in inner.run(data, rank, world_size):
            doc.metadata.pop("duplicate_count", None)
            yield doc
