"""readability: the McAlpine-EFLAW readability score of each document (`eflaw`; lower is easier).

The score is computed as textstat does it, by `filters/readability.py`.
"""

from __future__ import annotations

import pyarrow as pa
from datatrove.data import Document
from pydantic import Field

from curate.core.stage_api import Column, StrictModel, register_stage

from ..readability import mcalpine_eflaw
from ._batch import BatchAnnotator

EFLAW_COLUMN = "eflaw"
EFLAW_COLUMNS = [
    Column(EFLAW_COLUMN, pa.float32(), "McAlpine-EFLAW readability: (words + words <= 3 chars) / sentences")
]


class ReadabilityOptions(StrictModel):
    batch_size: int = Field(256, ge=1, description="documents per batch")


@register_stage("readability", ReadabilityOptions, "McAlpine-EFLAW readability score (eflaw)", columns=EFLAW_COLUMNS)
class ReadabilityAnnotator(BatchAnnotator):
    name = "readability"

    def __init__(self, opts: ReadabilityOptions, label: str | None = None) -> None:
        super().__init__(opts.batch_size, label)

    def annotate(self, docs: list[Document]) -> None:
        for d in docs:
            d.metadata[EFLAW_COLUMN] = mcalpine_eflaw(d.text)
