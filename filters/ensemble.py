"""The GneissWeb quality ensemble: every annotation and the category-aware rule, in one pass.

Per batch of documents: flatten the text once per preprocessing mode, run each fastText model
once on the whole batch (2 quality + 4 category models), encode the batch once with the
tokenizer, compute EFLAW, then evaluate the rule per document. The default rule is GneissWeb's:

    CAT  = is_category                     (any category classifier says its category)
    NCAT = not is_category
    FT   = ft_dclm > dclm_min or ft_cosmo > cosmo_min
    READ = (CAT and eflaw < eflaw_cat_max) or (NCAT and eflaw < eflaw_ncat_max)
    EXT  = (CAT and tpc_cat_min <= tokens_per_char <= tpc_cat_max)
           or (NCAT and tpc_ncat_min <= tokens_per_char <= tpc_ncat_max)
    KEEP = FT and (READ or EXT)

with dclm_min 0.002, cosmo_min 0.03, eflaw 70 / 30, tokens per char 0.1-0.5 / 0.22-0.28.
Every threshold is a `params` entry and every clause can be replaced in the config.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

from datatrove.data import Document
from datatrove.utils.batching import batched

from curate.core.steps import CurateStep

from .annotate_steps import EFLAW_COLUMN, count_failed_clauses, write_categories, write_densities
from .extreme_tokenization import TokenCounter
from .fasttext_annotator import CategoryModelSpec, CategoryScorer, FastTextModelSpec, QualityScorer, flatten_all
from .readability import mcalpine_eflaw, mcalpine_eflaw_reference
from .rule import Rule

GNEISSWEB_PARAMS: dict[str, float] = {
    "dclm_min": 0.002,
    "cosmo_min": 0.03,
    "eflaw_cat_max": 70,
    "eflaw_ncat_max": 30,
    "tpc_cat_min": 0.1,
    "tpc_cat_max": 0.5,
    "tpc_ncat_min": 0.22,
    "tpc_ncat_max": 0.28,
}
GNEISSWEB_CLAUSES: dict[str, str] = {
    "CAT": "is_category",
    "NCAT": "not is_category",
    "FT": "ft_dclm > dclm_min or ft_cosmo > cosmo_min",
    "READ": "(CAT and eflaw < eflaw_cat_max) or (NCAT and eflaw < eflaw_ncat_max)",
    "EXT": "(CAT and tpc_cat_min <= tokens_per_char <= tpc_cat_max) or "
           "(NCAT and tpc_ncat_min <= tokens_per_char <= tpc_ncat_max)",
}
GNEISSWEB_KEEP = "FT and (READ or EXT)"

GNEISSWEB_QUALITY_MODELS: list[dict[str, Any]] = [
    {"name": "dclm", "path": "mlfoundations/fasttext-oh-eli5", "label": "__label__hq", "preprocess": "dclm"},
    {"name": "cosmo", "path": "ibm-granite/GneissWeb.Quality_annotator", "label": "__label__hq", "preprocess": "newlines"},
]
GNEISSWEB_CATEGORY_MODELS: list[dict[str, Any]] = [
    {"name": "medical", "path": "ibm-granite/GneissWeb.Med_classifier"},
    {"name": "education", "path": "ibm-granite/GneissWeb.Edu_classifier"},
    {"name": "technology", "path": "ibm-granite/GneissWeb.Tech_classifier"},
    {"name": "science", "path": "ibm-granite/GneissWeb.Sci_classifier"},
]
# GneissWeb tokenized with StarCoder's tokenizer (a gated repository: needs HF_TOKEN)
GNEISSWEB_TOKENIZER = "bigcode/starcoder"


def build_rule(keep: str | None, clauses: Mapping[str, str] | None, params: Mapping[str, Any] | None,
               preset: str | None, key: str) -> Rule:
    """The preset's rule with the config's clauses, params and keep expression laid over it."""
    base_clauses: dict[str, str] = dict(GNEISSWEB_CLAUSES) if preset == "gneissweb" else {}
    base_params: dict[str, Any] = dict(GNEISSWEB_PARAMS) if preset == "gneissweb" else {}
    base_keep = GNEISSWEB_KEEP if preset == "gneissweb" else None
    base_clauses.update(clauses or {})
    base_params.update(params or {})
    keep = keep or base_keep
    if keep is None:
        from curate.core.errors import ConfigError

        raise ConfigError(f"{key + '.' if key else ''}keep: required (a rule expression, e.g. 'ft_dclm > 0.5') unless preset: gneissweb")
    return Rule(keep, base_clauses, base_params, key=key)


class GneissWebEnsemble(CurateStep):
    """All GneissWeb annotations plus the keep rule, in one batched pass."""

    name = "GneissWeb ensemble"

    def __init__(self, quality: Sequence[FastTextModelSpec], categories: Sequence[CategoryModelSpec], tokenizer: str,
                 rule: Rule | None, batch_size: int = 256, label: str | None = None, kernel: str = "fast") -> None:
        """`kernel`: "fast" (fastokens for the bundled GPT-2, one-pass EFLAW) or "reference" (HF tokenizers,
        EFLAW step by step as textstat does it): the same columns, kept as the benchmark's baseline."""
        super().__init__(label)
        self.quality = QualityScorer(quality)
        self.categories = CategoryScorer(categories)
        self.tokens = TokenCounter(tokenizer, engine=None if kernel == "fast" else "tokenizers")
        self._eflaw = mcalpine_eflaw if kernel == "fast" else mcalpine_eflaw_reference
        self.rule = rule
        self.batch_size = batch_size
        self._modes = {s.preprocess for s in quality} | {s.preprocess for s in categories}

    def annotate(self, docs: list[Document]) -> None:
        texts = [d.text for d in docs]
        # the tokenizers release the GIL: load (first batch) and encode in a thread while fastText and
        # EFLAW run here; the pool has one thread, so the counter is never used by two at once
        pool = self._pool()
        counts = pool.submit(self.tokens.count, texts)
        flat = flatten_all(texts, self._modes)
        for col, values in self.quality.score(texts, flat).items():
            for d, v in zip(docs, values):
                d.metadata[col] = v
        write_categories(docs, *self.categories.score(texts, flat))
        for d in docs:
            d.metadata[EFLAW_COLUMN] = self._eflaw(d.text)
        write_densities(docs, counts.result())

    def _pool(self):  # type: ignore[no-untyped-def]
        pool = self.__dict__.get("_thread_pool")
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = self.__dict__["_thread_pool"] = ThreadPoolExecutor(1, thread_name_prefix="curate-tokenize")
        return pool

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_thread_pool", None)
        return state

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                self.annotate(batch)
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
