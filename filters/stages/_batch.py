"""The base of the annotating stages: a step that annotates documents in batches and drops none.

Scores go into doc.metadata; every document is passed on, so accounting is trivially conserved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from datatrove.data import Document
from datatrove.utils.batching import batched

from curate.core.stage_api import CurateStep


class BatchAnnotator(CurateStep):
    """Annotates batches of documents in place and passes every document on."""

    per_document = True  # on_stage_error: skip may rerun a document alone

    type = "curate-annotator"

    def __init__(self, batch_size: int, label: str | None = None) -> None:
        super().__init__(label)
        self.batch_size = batch_size

    def annotate(self, docs: list[Document]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                self.annotate(batch)
            yield from batch
