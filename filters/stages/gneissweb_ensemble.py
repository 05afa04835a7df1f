"""gneissweb_ensemble: every GneissWeb annotation and the category-aware rule, in one pass.

Per batch of documents: flatten the text once per preprocessing mode, run each fastText model
once on the whole batch (2 quality + 4 category models), encode the batch once with the
tokenizer, compute EFLAW, then evaluate the rule per document. The columns are those of
`fasttext_annotate`, `category_classify`, `readability` and `extreme_tokenization` (written by
their functions here); the default rule, thresholds and models are GneissWeb's
(`filters/gneissweb_recipe.py`), and every threshold and clause can be replaced in the config.

`kernel: fast` spends its time in fastText: the token counts (fastokens, which releases the GIL) run
in a thread while fastText and EFLAW run here, and a batch waits for its counts only once the next
batches are annotated, up to `MAX_PENDING` of them (so the tokenizer's load, ~0.4 s of CPU, is
hidden behind fastText instead of stalling the first batch); the texts are flattened once per batch
into the lines fastText's predictor reads (`flatten_lines`), which every model takes as they are,
without the copy and check that `predict(list)` makes per model; EFLAW is computed for the whole batch in
numpy (`mcalpine_eflaw_batch`). Documents come out in order, with the same columns as
`kernel: reference`, which is the stage as it was before issue 14 and stays the benchmark's baseline.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

from datatrove.data import Document
from datatrove.utils.batching import batched
from pydantic import Field, model_validator

from curate.core.stage_api import (
    Column,
    CurateStep,
    ModelRef,
    PreflightContext,
    StrictModel,
    register_prepare,
    register_stage,
)

from ..fasttext_scoring import (
    CategoryModelSpec,
    CategoryScorer,
    FastTextModelSpec,
    QualityScorer,
    distinct_names,
    flatten_all,
    flatten_lines,
)
from ..gneissweb_recipe import GNEISSWEB_CATEGORY_MODELS, GNEISSWEB_QUALITY_MODELS, GNEISSWEB_TOKENIZER
from ..readability import mcalpine_eflaw_batch, mcalpine_eflaw_reference
from ..rule import Rule
from ..token_counts import TokenCounter
from .category_classify import category_columns, write_categories
from .extreme_tokenization import TOKEN_COLUMNS, prepare_tokenizer, write_densities
from .fasttext_annotate import fasttext_columns, prepare_models
from .quality_rule import compile_rule, count_failed_clauses
from .readability import EFLAW_COLUMN, EFLAW_COLUMNS

# batches of the fast kernel that may wait for their token counts while the next ones are annotated:
# enough to cover the tokenizer's load (~0.4 s of CPU against ~0.15 s of fastText per 256 documents)
MAX_PENDING = 4


class GneissWebOptions(StrictModel):
    quality_models: list[FastTextModelSpec] = Field(
        default_factory=lambda: [FastTextModelSpec(**m) for m in GNEISSWEB_QUALITY_MODELS],
        description="quality classifiers (default: DCLM fasttext-oh-eli5 as dclm, GneissWeb.Quality_annotator as cosmo)",
    )
    category_models: list[CategoryModelSpec] = Field(
        default_factory=lambda: [CategoryModelSpec(**m) for m in GNEISSWEB_CATEGORY_MODELS],
        description="category classifiers (default: GneissWeb's medical, education, technology, science)",
    )
    tokenizer: ModelRef = Field(
        GNEISSWEB_TOKENIZER, description="tokenizer.json path or hub repo (GneissWeb: StarCoder)"
    )
    params: dict[str, float | int | bool | str] = Field(
        default_factory=dict, description="threshold overrides (dclm_min, cosmo_min, eflaw_cat_max, ...)"
    )
    clauses: dict[str, str] = Field(default_factory=dict, description="clause overrides (CAT, NCAT, FT, READ, EXT)")
    keep: str | None = Field(None, description="keep expression override (default FT and (READ or EXT))")
    annotate_only: bool = Field(False, description="write the columns but drop nothing")
    batch_size: int = Field(256, ge=1, description="documents per batch")
    kernel: Literal["fast", "reference"] = Field(
        "fast",
        description="fast: fastokens for the bundled GPT-2 tokenizer (overlapped with fastText) + EFLAW of the "
        "batch in numpy; reference: HF tokenizers + EFLAW transcribed step by step from textstat "
        "(the previous kernel; identical columns, slower)",
    )

    _rule: Rule | None = None

    @model_validator(mode="after")
    def _compile(self) -> GneissWebOptions:
        distinct_names(self.quality_models, "quality_models")
        distinct_names(self.category_models, "category_models")
        self._rule = compile_rule(self.keep, self.clauses, self.params, "gneissweb")
        return self

    @property
    def rule(self) -> Rule:
        assert self._rule is not None
        return self._rule


def gneissweb_columns(opts: GneissWebOptions) -> list[Column]:
    """The columns of the four annotating stages, for these models."""
    return (
        fasttext_columns(opts.quality_models) + category_columns(opts.category_models) + EFLAW_COLUMNS + TOKEN_COLUMNS
    )


@register_stage(
    "gneissweb_ensemble",
    GneissWebOptions,
    "GneissWeb quality ensemble: 2 quality + 4 category fastText models, EFLAW, tokens/char, the rule",
    columns=gneissweb_columns,
)
class GneissWebEnsemble(CurateStep):
    """All GneissWeb annotations plus the keep rule, in one batched pass.

    `opts.kernel`: "fast" (fastokens for the bundled GPT-2 in a thread, EFLAW of the batch in numpy, see the
    module's docstring) or "reference" (HF tokenizers, EFLAW step by step as textstat does it): the same
    columns; the reference is kept as the benchmark's baseline."""

    per_document = True  # on_stage_error: skip may rerun a document alone

    name = "GneissWeb ensemble"

    def __init__(self, opts: GneissWebOptions, label: str | None = None) -> None:
        super().__init__(label)
        self.quality = QualityScorer(opts.quality_models)
        self.categories = CategoryScorer(opts.category_models)
        self.tokens = TokenCounter(opts.tokenizer, engine=None if opts.kernel == "fast" else "tokenizers")
        self.kernel = opts.kernel
        self.rule = None if opts.annotate_only else opts.rule
        self.batch_size = opts.batch_size
        self._modes: set[str] = {s.preprocess for s in opts.quality_models} | {
            s.preprocess for s in opts.category_models
        }

    def annotate(self, docs: list[Document]) -> None:
        """Every column of the batch into its documents' metadata, done when this returns."""
        if self.kernel == "reference":
            self._annotate_reference(docs)
        else:
            write_densities(docs, self._start(docs).result())

    def _start(self, docs: list[Document]) -> Future:
        """The fast kernel: every column but the token densities; the future of the batch's token counts."""
        texts = [d.text for d in docs]
        # fastokens releases the GIL: load (first batch) and count in a thread while fastText and EFLAW
        # run here; the pool has one thread, so the counter is never used by two at once
        counts = self._pool().submit(self.tokens.count, texts)
        lines = flatten_lines(texts, self._modes)
        for col, values in self.quality.score_lines(lines).items():
            for d, v in zip(docs, values):
                d.metadata[col] = v
        write_categories(docs, *self.categories.score_lines(lines, len(texts)))
        for d, v in zip(docs, mcalpine_eflaw_batch(texts)):
            d.metadata[EFLAW_COLUMN] = v
        return counts

    def _annotate_reference(self, docs: list[Document]) -> None:
        """The stage before issue 14 (the benchmark's baseline): HF tokenizers in the thread, EFLAW per doc."""
        texts = [d.text for d in docs]
        pool = self._pool()
        counts = pool.submit(self.tokens.count, texts)
        flat = flatten_all(texts, self._modes)
        for col, values in self.quality.score(texts, flat).items():
            for d, v in zip(docs, values):
                d.metadata[col] = v
        write_categories(docs, *self.categories.score(texts, flat))
        for d in docs:
            d.metadata[EFLAW_COLUMN] = mcalpine_eflaw_reference(d.text)
        write_densities(docs, counts.result())

    def _pool(self) -> ThreadPoolExecutor:
        pool = self.__dict__.get("_thread_pool")
        if pool is None:
            pool = self.__dict__["_thread_pool"] = ThreadPoolExecutor(1, thread_name_prefix="curate-tokenize")
        return pool

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_thread_pool", None)
        return state

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        try:
            yield from self._run(data)
        finally:
            self._close_pool()

    def _close_pool(self) -> None:
        """No thread outlives the task: a pool thread left behind kept Ray's worker process (which forks the
        task and ends it with SIGTERM) from exiting, and the driver waited for it forever."""
        pool = self.__dict__.pop("_thread_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, data: Iterable[Document]) -> Iterator[Document]:
        if self.kernel == "reference":
            for batch in batched(data, self.batch_size):
                with self.track_time("batch"):
                    self.annotate(batch)
                yield from self._apply_rule(batch)
            return
        # batches annotated but for their token counts, oldest first, with the seconds spent on each so far
        pending: deque[tuple[list[Document], Future, float]] = deque()
        for batch in batched(data, self.batch_size):
            t = time.perf_counter()
            pending.append((batch, self._start(batch), time.perf_counter() - t))
            while pending and (pending[0][1].done() or len(pending) > MAX_PENDING):
                yield from self._finish(*pending.popleft())
        while pending:
            yield from self._finish(*pending.popleft())

    def _finish(self, batch: list[Document], counts: Future, seconds: float) -> Iterator[Document]:
        t = time.perf_counter()
        write_densities(batch, counts.result())
        self.track_time("batch").update(seconds + time.perf_counter() - t)
        yield from self._apply_rule(batch)

    def _apply_rule(self, batch: list[Document]) -> Iterator[Document]:
        for doc in batch:
            if self.rule is None:
                yield doc
                continue
            keep, failed = self.rule.evaluate(doc.metadata)
            if keep:
                yield doc
            else:
                count_failed_clauses(self, failed or "")
                self.drop(doc, failed or "rule")


@register_prepare("gneissweb_ensemble")
def prepare_gneissweb(opts: GneissWebOptions, pf: PreflightContext) -> None:
    prepare_models(opts.quality_models, "quality_models", pf)
    prepare_models(opts.category_models, "category_models", pf)
    prepare_tokenizer(opts, pf)
    pf.check_names(opts.rule.columns, f"{pf.key}.keep", [c.name for c in gneissweb_columns(opts)])
