"""length_filter: drop documents outside a character / word count range (a stage needing no model; an example of one)."""

from __future__ import annotations

from datatrove.data import Document
from pydantic import Field, model_validator

from curate.core.stage_api import CurateFilter, StrictModel, register_stage


class LengthFilterOptions(StrictModel):
    min_chars: int = Field(0, ge=0, description="drop documents shorter than this many characters")
    max_chars: int | None = Field(None, gt=0, description="drop documents longer than this")
    min_words: int = Field(0, ge=0, description="drop documents with fewer whitespace-separated words")
    max_words: int | None = Field(None, gt=0, description="drop documents with more words")

    @model_validator(mode="after")
    def _ranges(self) -> LengthFilterOptions:
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) is below min_chars ({self.min_chars})")
        if self.max_words is not None and self.max_words < self.min_words:
            raise ValueError(f"max_words ({self.max_words}) is below min_words ({self.min_words})")
        return self


@register_stage("length_filter", LengthFilterOptions, "drop documents outside a character / word count range")
class LengthFilter(CurateFilter):
    name = "length filter"

    def __init__(self, opts: LengthFilterOptions, label: str | None = None) -> None:
        super().__init__(label)
        self.opts = opts

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        o = self.opts
        n = len(doc.text)
        if n < o.min_chars:
            return False, "too_few_chars"
        if o.max_chars is not None and n > o.max_chars:
            return False, "too_many_chars"
        if o.min_words or o.max_words is not None:
            words = len(doc.text.split())
            if words < o.min_words:
                return False, "too_few_words"
            if o.max_words is not None and words > o.max_words:
                return False, "too_many_words"
        return True
