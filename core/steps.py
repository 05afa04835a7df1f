"""Accounting for every stage: docs in = docs out + docs dropped (by reason), chars in and out.

`Accounted` is a mixin for datatrove `PipelineStep`s. It wraps the step's generator, counts what
flows in and out, and records drops that the step reports with `self.drop(doc, reason)`. At the
end of a task the counts go into datatrove's per-step stats (so executors merge them across
tasks for free) under the keys `docs_in`, `docs_out`, `dropped/<reason>`, `chars_in`,
`chars_out`. A step that loses a document without saying why is reported as `unaccounted`
and logged as an error: the equation always balances in stats.json, and a bug is visible.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result
from datatrove.utils.batching import batched
from loguru import logger

from . import edits
from .errors import InputError
from .isolate import isolating

if TYPE_CHECKING:
    from datatrove.pipeline.writers.disk_base import DiskWriter
    from datatrove.utils.stats import PipelineStats

DROP_STAGE = "drop_stage"
DROP_REASON = "drop_reason"
UNACCOUNTED = "unaccounted"
_MAX_LOGGED_BAD_RECORDS = 20


class _Counts:
    __slots__ = ("docs_in", "docs_out", "chars_in", "chars_out", "dropped", "bad_logged", "docs_out_hint")

    def __init__(self) -> None:
        self.docs_in = self.docs_out = self.chars_in = self.chars_out = self.docs_out_hint = 0
        self.dropped: Counter[str] = Counter()
        self.bad_logged = 0


class Accounted:
    """Mixin: put it first in the bases of a PipelineStep (`class X(Accounted, PipelineStep)`)."""

    # set by the plan builder (or by hand in notebooks) via configure()
    label: str | None = None
    on_error: str = "skip"
    if TYPE_CHECKING:  # provided by the PipelineStep this mixin is combined with
        name: str
        stats: PipelineStats

        def stat_update(self, *labels: str, value: int = 1, unit: str | None = None) -> None: ...

    rejected_writer: DiskWriter | None = None
    # plumbing steps (handoff readers/writers) are kept out of the summary table
    plumbing: bool = False
    # `on_stage_error: skip` drops a document the step raises on (core/isolate.py); only for steps whose result
    # for a document depends on that document alone
    on_stage_error: str = "fail"
    per_document: bool = False

    def configure(
        self,
        label: str | None = None,
        on_error: str | None = None,
        rejected_writer: Any = None,
        on_stage_error: str | None = None,
    ) -> Accounted:
        if label:
            self.label = label
            self.name = label
        if on_error:
            self.on_error = on_error
        if on_stage_error:
            self.on_stage_error = on_stage_error
        if rejected_writer is not None:
            self.rejected_writer = rejected_writer
        return self

    # -- used by subclasses -------------------------------------------------------------------
    def drop(self, doc: Document, reason: str) -> None:
        """Report that `doc` leaves the pipeline here, and why. Never just `continue` past a doc."""
        c = self._counts
        c.dropped[reason] += 1
        isolator = self.__dict__.get("_isolator")
        if isolator is not None:
            isolator.resolved(doc)
        if self.rejected_writer is not None:
            doc.metadata[DROP_STAGE] = self.label or self.name
            doc.metadata[DROP_REASON] = reason
            self.rejected_writer.write(doc, self._rank)

    def record_in(self, chars: int = 0) -> None:
        """For sources (readers): one more input record, counted before it is parsed."""
        self._counts.docs_in += 1
        self._counts.chars_in += chars

    def bad_record(self, path: str, record: int | str | None, reason: str, detail: str = "") -> None:
        """A record of the input is unusable: fail or count+log, as `on_error` says. The caller skips it."""
        err = InputError(path, record, reason, detail)
        if self.on_error == "fail":
            raise err
        c = self._counts
        c.dropped[reason] += 1
        if c.bad_logged < _MAX_LOGGED_BAD_RECORDS:
            logger.warning(f"skipping {err}")
        elif c.bad_logged == _MAX_LOGGED_BAD_RECORDS:
            logger.warning(f"{self.label or self.name}: more bad records; counting them in stats without logging each")
        c.bad_logged += 1

    # -- the wrapper ------------------------------------------------------------------------------
    @property
    def _counts(self) -> _Counts:
        c = self.__dict__.get("_curate_counts")
        if c is None:
            c = self.__dict__["_curate_counts"] = _Counts()
        return c

    def _count_in(self, data: Iterable[Document]) -> Iterator[Document]:
        c = self._counts
        for doc in data:
            c.docs_in += 1
            c.chars_in += len(doc.text)
            yield doc

    def __call__(
        self, data: Iterable[Document] | None = None, rank: int = 0, world_size: int = 1
    ) -> Iterator[Document]:
        return self._accounted(data, rank, world_size)

    def _accounted(self, data: Iterable[Document] | None, rank: int, world_size: int) -> Iterator[Document]:
        self.__dict__["_curate_counts"] = _Counts()
        self._rank = rank
        c = self._counts
        source = self._count_in(data) if data is not None else None
        writer = self.rejected_writer
        failed = False
        try:
            with writer if writer is not None else contextlib.nullcontext():
                if self.on_stage_error == "skip" and self.per_document and source is not None:
                    docs = isolating(self, source, rank, world_size)
                else:
                    docs = self.run(source, rank, world_size)  # type: ignore[attr-defined]
                for doc in docs:
                    c.docs_out += 1
                    c.chars_out += len(doc.text)
                    yield doc
        except Exception:
            # the task fails and datatrove keeps no stats for it: counting its in-flight docs
            # as "unaccounted" would only add a misleading error line
            failed = True
            raise
        finally:
            if not failed:
                self._flush_counts()

    def _flush_counts(self) -> None:
        c = self._counts
        dropped = sum(c.dropped.values())
        missing = c.docs_in - c.docs_out - dropped
        if missing:
            logger.error(
                f"{self.label or self.name}: {missing} documents in but neither out nor dropped; "
                f"recorded as '{UNACCOUNTED}' (this is a bug in the stage)"
            )
            c.dropped[UNACCOUNTED] += missing
        stat = self.stat_update
        stat("docs_in", value=c.docs_in)
        stat("docs_out", value=c.docs_out)
        stat("chars_in", value=c.chars_in)
        stat("chars_out", value=c.chars_out)
        for reason, n in c.dropped.items():
            stat(f"dropped/{reason}", value=n)


class CurateStep(Accounted, PipelineStep):
    """Base for curate's own document-processing steps."""

    type = "curate"

    def __init__(self, label: str | None = None) -> None:
        super().__init__()
        if label:
            self.configure(label=label)


class CurateFilter(Accounted, BaseFilter):
    """A datatrove filter (`filter(doc) -> bool | (False, reason)`, `filter_batch`) with curate's accounting.

    Drops go through `Accounted.drop`, so reasons reach stats.json and the `rejected/` output.
    """

    type = "curate-filter"
    default_reason = "filtered"
    per_document = True

    def __init__(self, label: str | None = None, batch_size: int = 1) -> None:
        BaseFilter.__init__(self, exclusion_writer=None, batch_size=batch_size)
        if label:
            self.configure(label=label)

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch" if self.batch_size > 1 else None):
                results = self.filter_batch(batch)
            for doc, res in zip(batch, results):
                keep, reason = get_filter_result(res)
                if keep:
                    yield doc
                else:
                    self.drop(doc, reason or self.default_reason)


class WrappedFilter(CurateFilter):
    """Runs any datatrove `BaseFilter` (Gopher, C4, FineWeb, ...) with curate's accounting.

    A filter that rewrites the text of a document it keeps (C4 removes lines) only leaves the text
    before and after: with `record_edits`, their difference goes to the edits column (core/edits.py)."""

    def __init__(
        self, inner: BaseFilter, label: str | None = None, reason_prefix: str = "", record_edits: bool = False
    ) -> None:
        super().__init__(label=label, batch_size=inner.batch_size)
        self.inner = inner
        self.reason_prefix = reason_prefix
        self.record_edits = record_edits
        self.name = label or inner.name

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.inner.filter(doc)

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        before = [d.text for d in batch] if self.record_edits else None
        out: list[bool | tuple[bool, str]] = []
        for k, res in enumerate(self.inner.filter_batch(batch)):
            keep, reason = get_filter_result(res)
            out.append(True if keep else (False, f"{self.reason_prefix}{reason or 'filtered'}"))
            if keep and before is not None and batch[k].text != before[k]:
                stage = self.label or self.name
                edits.record(batch[k].metadata, stage, before[k], edits.diff_spans(before[k], batch[k].text))
        return out
