"""Pipeline steps that annotate documents in batches (scores go into doc.metadata) and the rule filter.

Every annotator passes each document through (it never drops), so accounting is trivially
conserved; the `RuleFilter` drops with the failed clause as the reason.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

from datatrove.data import Document
from datatrove.utils.batching import batched

from curate.core.steps import CurateFilter, CurateStep

from .extreme_tokenization import TokenCounter, token_densities
from .fasttext_annotator import CategoryModelSpec, CategoryScorer, FastTextModelSpec, QualityScorer
from .readability import mcalpine_eflaw
from .rule import Rule

# the categories whose classifier said yes, as a list in model order; null (not [] or '') when none did
CATEGORIES_COLUMN = "categories"
IS_CATEGORY_COLUMN = "is_category"
EFLAW_COLUMN = "eflaw"
TPC_COLUMN = "tokens_per_char"
TPB_COLUMN = "tokens_per_byte"


class BatchAnnotator(CurateStep):
    """Annotates batches of documents in place and passes every document on."""

    type = "curate-annotator"

    def __init__(self, batch_size: int = 256, label: str | None = None) -> None:
        super().__init__(label)
        self.batch_size = batch_size

    def annotate(self, docs: list[Document]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                self.annotate(batch)
            yield from batch


class FastTextAnnotator(BatchAnnotator):
    name = "fastText annotate"

    def __init__(self, models: Sequence[FastTextModelSpec], batch_size: int = 256, label: str | None = None) -> None:
        super().__init__(batch_size, label)
        self.scorer = QualityScorer(models)

    def annotate(self, docs: list[Document]) -> None:
        scores = self.scorer.score([d.text for d in docs])
        for col, values in scores.items():
            for d, v in zip(docs, values):
                d.metadata[col] = v


class CategoryAnnotator(BatchAnnotator):
    name = "category classify"

    def __init__(self, models: Sequence[CategoryModelSpec], batch_size: int = 256, label: str | None = None) -> None:
        super().__init__(batch_size, label)
        self.scorer = CategoryScorer(models)

    def annotate(self, docs: list[Document]) -> None:
        scores, said = self.scorer.score([d.text for d in docs])
        write_categories(docs, scores, said)


def write_categories(docs: list[Document], scores: dict[str, list[float]], said: list[list[str]]) -> None:
    for col, values in scores.items():
        for d, v in zip(docs, values):
            d.metadata[col] = v
    for d, cats in zip(docs, said):
        d.metadata[CATEGORIES_COLUMN] = cats or None
        d.metadata[IS_CATEGORY_COLUMN] = bool(cats)


class ReadabilityAnnotator(BatchAnnotator):
    name = "readability"

    def annotate(self, docs: list[Document]) -> None:
        for d in docs:
            d.metadata[EFLAW_COLUMN] = mcalpine_eflaw(d.text)


class TokenizationAnnotator(BatchAnnotator):
    name = "extreme tokenization"

    def __init__(self, tokenizer: str, batch_size: int = 256, label: str | None = None) -> None:
        super().__init__(batch_size, label)
        self.counter = TokenCounter(tokenizer)

    def annotate(self, docs: list[Document]) -> None:
        write_densities(docs, self.counter.count([d.text for d in docs]))


def write_densities(docs: list[Document], counts: list[int]) -> None:
    for d, n in zip(docs, counts):
        d.metadata[TPC_COLUMN], d.metadata[TPB_COLUMN] = token_densities(n, d.text)


class RuleFilter(CurateFilter):
    """Keeps documents for which the rule holds; a drop's reason is the clause that failed."""

    name = "quality rule"

    def __init__(self, rule: Rule, label: str | None = None) -> None:
        super().__init__(label)
        self.rule = rule

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        keep, failed = self.rule.evaluate(doc.metadata)
        if keep:
            return True
        count_failed_clauses(self, failed or "")
        return False, failed or "rule"


def count_failed_clauses(step: CurateStep | CurateFilter, failed: str) -> None:
    # "READ,EXT" drops count once under that reason and once under each clause here
    for clause in failed.split(","):
        step.stat_update(f"failed_clause/{clause}")
