"""fasttext_annotate: P(label) of each configured fastText classifier, several models in one pass.

The scoring itself (preprocessing, batched predict, P(label) rather than top-1 confidence) is in
`filters/fasttext_scoring.py`; `prepare_models` is the launcher's check of fastText models, also
used by `category_classify` and `gneissweb_ensemble`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from datatrove.data import Document
from pydantic import Field, field_validator

from curate.core.stage_api import Column, PreflightContext, StrictModel, register_prepare, register_stage

from ..fasttext_header import check_label
from ..fasttext_scoring import CategoryModelSpec, FastTextModelSpec, QualityScorer, distinct_names
from ._batch import BatchAnnotator


class FastTextAnnotateOptions(StrictModel):
    models: list[FastTextModelSpec] = Field(
        min_length=1, description="fastText models; each writes P(label) to ft_<name>"
    )
    batch_size: int = Field(256, ge=1, description="documents per predict call")

    @field_validator("models")
    @classmethod
    def _distinct(cls, v: list[FastTextModelSpec]) -> list[FastTextModelSpec]:
        return distinct_names(v, "models")


def fasttext_columns(models: Sequence[FastTextModelSpec]) -> list[Column]:
    """One P(label) column per quality model."""
    return [Column(m.out_column, pa.float32(), f"P({m.label}) of fastText model {m.name}") for m in models]


@register_stage(
    "fasttext_annotate",
    FastTextAnnotateOptions,
    "fastText classifiers (local .bin/.ftz or hub): P(label) per model, several models in one pass",
    columns=lambda o: fasttext_columns(o.models),
)
class FastTextAnnotator(BatchAnnotator):
    name = "fastText annotate"

    def __init__(self, opts: FastTextAnnotateOptions, label: str | None = None) -> None:
        super().__init__(opts.batch_size, label)
        self.scorer = QualityScorer(opts.models)

    def annotate(self, docs: list[Document]) -> None:
        scores = self.scorer.score([d.text for d in docs])
        for col, values in scores.items():
            for d, v in zip(docs, values):
                d.metadata[col] = v


def prepare_models(models: Sequence[FastTextModelSpec | CategoryModelSpec], key: str, pf: PreflightContext) -> None:
    """Each model exists, is a fastText model and has its label; a hub id becomes the cached local file."""
    for k, m in enumerate(models):
        where = f"{pf.key}.{key}[{k}] ({m.name})"
        path = pf.model_file(m.path, where, m.filename)
        if path is None:
            continue
        if pf.is_local(path):
            m.path, m.filename = path, None  # tasks load the resolved file: no hub access per task
            check_label(pf, path, m.negative_label if isinstance(m, CategoryModelSpec) else m.label, where)


@register_prepare("fasttext_annotate")
def prepare_fasttext(opts: FastTextAnnotateOptions, pf: PreflightContext) -> None:
    prepare_models(opts.models, "models", pf)
