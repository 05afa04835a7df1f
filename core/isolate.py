"""`on_stage_error: skip`: a document on which a stage raises is dropped (`stage_error/<stage>`), not the task.

A step's `run` is a generator over the whole stream, and a generator that raised cannot go on. So
the stream is fed to the step while the documents it has taken and not yet given out or dropped
are remembered; when it raises, each of those is run through the step alone (the one that raises
again is dropped, the others go on), and the step starts again on the rest of the stream. Only
steps whose result for a document depends on that document alone may do this
(`Accounted.per_document`): a dedup filter counts documents, an exact-substring shard spans many.

A stage that raises on every document is broken, not fed bad data: after `BROKEN_AFTER` documents
in a row fail alone with none passing, the error is raised and the task fails as with `fail`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from datatrove.data import Document
from loguru import logger

STAGE_ERROR = "stage_error"
LOGGED_PER_TASK = 20
BROKEN_AFTER = 20


class Isolator:
    """Runs `run(stream)` so that a document that makes it raise is dropped and the rest flows on."""

    def __init__(
        self,
        run: Callable[[Iterable[Document]], Iterator[Document]],
        drop: Callable[[Document, str], None],
        label: str,
    ) -> None:
        self._run, self._drop, self._label = run, drop, label
        self._open: dict[int, Document] = {}  # taken by the step, neither out nor dropped yet
        self.failed = 0
        self._failed_in_a_row = 0

    def resolved(self, doc: Document) -> None:
        """The step gave `doc` out or dropped it."""
        self._open.pop(id(doc), None)

    def _feed(self, it: Iterator[Document]) -> Iterator[Document]:
        for doc in it:
            self._open[id(doc)] = doc
            yield doc

    def __call__(self, data: Iterable[Document]) -> Iterator[Document]:
        it = iter(data)
        while True:
            try:
                for doc in self._run(self._feed(it)):
                    self.resolved(doc)
                    yield doc
                return
            except Exception:  # the documents in flight: one of them (or several) made it raise
                suspects, self._open = list(self._open.values()), {}
                for doc in suspects:
                    yield from self._alone(doc)

    def _alone(self, doc: Document) -> Iterator[Document]:
        try:
            out = list(self._run(iter([doc])))
        except Exception as e:
            self._failed(doc, e)
            return
        self._failed_in_a_row = 0
        yield from out

    def _failed(self, doc: Document, e: Exception) -> None:
        self.failed += 1
        self._failed_in_a_row += 1
        if self._failed_in_a_row >= BROKEN_AFTER:
            raise e  # every document fails: the stage itself is broken
        if self.failed <= LOGGED_PER_TASK:
            logger.warning(
                f"{self._label}: dropped document {doc.id!r}: {type(e).__name__}: {e} (on_stage_error: skip)"
            )
        elif self.failed == LOGGED_PER_TASK + 1:
            logger.warning(f"{self._label}: more documents raise; counted as {STAGE_ERROR}/{self._label} in stats")
        self._drop(doc, f"{STAGE_ERROR}/{self._label}")


def isolating(step: Any, data: Iterable[Document], rank: int, world_size: int) -> Iterator[Document]:
    """`step.run` over `data`, dropping the documents it raises on (see the module docstring)."""
    label = step.label or step.name
    isolator = Isolator(lambda stream: step.run(stream, rank, world_size), step.drop, label)
    step.__dict__["_isolator"] = isolator
    try:
        yield from isolator(data)
    finally:
        step.__dict__.pop("_isolator", None)
