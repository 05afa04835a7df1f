"""exact_doc_dedup: exact-document dedup across all tasks of a run, hash of normalized text, one copy kept.

Built on datatrove's three exact-dedup steps (signatures per task -> one finder task that sorts all
hashes -> filter per task), planned like MinHash: barrier, a signatures side job over the handed-off
documents, a finder job, then `ExactDocFilter` in the continuing job. Which copy survives is
datatrove's rule: the lowest document index among equal hashes (within one task that is the first
in input order; across tasks the tie between equal indexes is arbitrary but deterministic).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from datatrove.data import Document
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from pydantic import Field

from curate.core.stage_api import BuildContext, CurateStep, StrictModel, register_stage

from ..normalize import NORMALIZERS


class ExactDocOptions(StrictModel):
    normalize: Literal[tuple(NORMALIZERS)] = Field(  # type: ignore[valid-type]
        "whitespace",
        description="text compared: none (as is) | whitespace (NFC, whitespace runs collapsed, "
        "stripped) | whitespace_lower",
    )


def exact_config(normalize: str) -> ExactDedupConfig:
    return ExactDedupConfig(content_getter=NORMALIZERS[normalize])


class _DropSink:
    """Stands in for datatrove's exclusion writer: every excluded doc is a curate drop with a reason."""

    def __init__(self, step: CurateStep, reason: str) -> None:
        self.step, self.reason = step, reason

    def __enter__(self) -> _DropSink:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, doc: Document, rank: int = 0, **kwargs: object) -> None:
        self.step.drop(doc, self.reason)


class ExactDocFilter(CurateStep):
    """Last step: drop every document the finder job listed as a later copy (reason `exact_duplicate`)."""

    name = "exact doc filter"

    def __init__(self, opts: ExactDocOptions, dups_folder: str, label: str | None = None) -> None:
        super().__init__(label)
        self.opts = opts
        self.dups_folder = dups_folder

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        inner = ExactDedupFilter(
            self.dups_folder, exact_config(self.opts.normalize), exclusion_writer=_DropSink(self, "exact_duplicate")
        )
        for doc in inner.run(data, rank, world_size):
            doc.metadata.pop("duplicate_count", None)
            yield doc


@register_stage(
    "exact_doc_dedup",
    ExactDocOptions,
    "drop documents whose normalized text equals an earlier one's, across the whole run (hash)",
)
def build_exact_doc(opts: ExactDocOptions, ctx: BuildContext) -> None:
    label = ctx.stage_label
    cfg = exact_config(opts.normalize)
    docs = ctx.barrier(label)
    sigs, dups = ctx.work_path(label, "signatures"), ctx.work_path(label, "dups")
    ctx.add_job(
        f"{label}_signatures",
        [ctx.handoff_reader(docs), ExactDedupSignature(sigs, cfg, finder_workers=1)],
        tasks=ctx.tasks,
        writes=[sigs],
    )
    ctx.add_job(f"{label}_find", [ExactFindDedups(sigs, dups, cfg)], tasks=1, writes=[dups])
    ctx.add(ExactDocFilter(opts, dups))
