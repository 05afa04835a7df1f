"""digit_ratio_filter: drop documents that are mostly digits (tables of numbers, phone lists)."""

from __future__ import annotations

import pyarrow as pa
from datatrove.data import Document
from pydantic import Field

from curate.core.stage_api import Column, CurateFilter, StrictModel, register_stage


class DigitRatioOptions(StrictModel):
    max_ratio: float = Field(0.2, ge=0, le=1, description="drop documents with a higher share of digit characters")


@register_stage(
    "digit_ratio_filter",
    DigitRatioOptions,
    "drop documents that are mostly digits",
    columns=[Column("digit_ratio", pa.float32(), "digit characters / characters")],
)
class DigitRatioFilter(CurateFilter):
    name = "digit ratio filter"

    def __init__(self, opts: DigitRatioOptions) -> None:
        super().__init__()
        self.opts = opts

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        ratio = sum(c.isdigit() for c in doc.text) / max(len(doc.text), 1)
        doc.metadata["digit_ratio"] = ratio
        return ratio <= self.opts.max_ratio or (False, "too_many_digits")
