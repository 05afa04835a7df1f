"""category_classify: fastText category classifiers; a document is a category document if any says its category.

Each model's score is 1 - P(negative label) (`cat_<name>`); `categories` lists the categories whose
model's top label is not the negative one, `is_category` says whether any did (GneissWeb's CAT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pyarrow as pa
from datatrove.data import Document
from pydantic import Field, model_validator

from curate.core.stage_api import Column, PreflightContext, StrictModel, register_prepare, register_stage

from ..fasttext_scoring import CategoryModelSpec, CategoryScorer, distinct_names
from ..gneissweb_recipe import GNEISSWEB_CATEGORY_MODELS
from ._batch import BatchAnnotator
from .fasttext_annotate import prepare_models

# the categories whose classifier said yes, as a list in model order; null (not [] or '') when none did
CATEGORIES_COLUMN = "categories"
IS_CATEGORY_COLUMN = "is_category"


class CategoryOptions(StrictModel):
    preset: Literal["category"] | None = Field(
        "category", description="category: GneissWeb's four hub classifiers (medical, education, technology, science)"
    )
    models: list[CategoryModelSpec] | None = Field(None, description="category models (replace the preset's)")
    batch_size: int = Field(256, ge=1, description="documents per predict call")

    @model_validator(mode="after")
    def _models(self) -> CategoryOptions:
        if self.models is None:
            if self.preset is None:
                raise ValueError("give `models:` or `preset: category`")
            self.models = [CategoryModelSpec(**m) for m in GNEISSWEB_CATEGORY_MODELS]
        distinct_names(self.models, "models")
        return self


def category_columns(models: Sequence[CategoryModelSpec]) -> list[Column]:
    """One score column per category model, then `categories` and `is_category`."""
    return [
        Column(m.out_column, pa.float32(), f"1 - P({m.negative_label}) of the {m.name} classifier") for m in models
    ] + [
        Column(CATEGORIES_COLUMN, pa.list_(pa.string()), "categories whose classifier said yes (null: none did)"),
        Column(IS_CATEGORY_COLUMN, pa.bool_(), "any category classifier said its category (GneissWeb's CAT)"),
    ]


def write_categories(docs: list[Document], scores: dict[str, list[float]], said: list[list[str]]) -> None:
    """A `CategoryScorer`'s answer for a batch into the documents' metadata."""
    for col, values in scores.items():
        for d, v in zip(docs, values):
            d.metadata[col] = v
    for d, cats in zip(docs, said):
        d.metadata[CATEGORIES_COLUMN] = cats or None
        d.metadata[IS_CATEGORY_COLUMN] = bool(cats)


@register_stage(
    "category_classify",
    CategoryOptions,
    "fastText category classifiers; a doc is category (is_category) if any says its category",
    columns=lambda o: category_columns(o.models or []),
)
class CategoryAnnotator(BatchAnnotator):
    name = "category classify"

    def __init__(self, opts: CategoryOptions, label: str | None = None) -> None:
        super().__init__(opts.batch_size, label)
        self.scorer = CategoryScorer(opts.models or [])

    def annotate(self, docs: list[Document]) -> None:
        write_categories(docs, *self.scorer.score([d.text for d in docs]))


@register_prepare("category_classify")
def prepare_category(opts: CategoryOptions, pf: PreflightContext) -> None:
    prepare_models(opts.models or [], "models", pf)
