"""Stage registrations of curate.filters: options (YAML keys), output columns, build functions."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from curate.core.options import ModelRef, StrictModel
from curate.core.errors import ConfigError
from curate.core.stage_api import BuildContext, Column, register_prepare, register_stage
from curate.core.steps import WrappedFilter

from . import heuristics
from .annotate_steps import (
    CATEGORIES_COLUMN,
    EFLAW_COLUMN,
    IS_CATEGORY_COLUMN,
    TPB_COLUMN,
    TPC_COLUMN,
    CategoryAnnotator,
    FastTextAnnotator,
    ReadabilityAnnotator,
    RuleFilter,
    TokenizationAnnotator,
)
from .ensemble import (
    GNEISSWEB_CATEGORY_MODELS,
    GNEISSWEB_QUALITY_MODELS,
    GNEISSWEB_TOKENIZER,
    GneissWebEnsemble,
    build_rule,
)
from .fasttext_annotator import CategoryModelSpec, FastTextModelSpec
from .rule import Rule

_CATEGORY_COLS = [
    Column(CATEGORIES_COLUMN, pa.list_(pa.string()), "categories whose classifier said yes (null: none did)"),
    Column(IS_CATEGORY_COLUMN, pa.bool_(), "any category classifier said its category (GneissWeb's CAT)"),
]
_EFLAW_COLS = [Column(EFLAW_COLUMN, pa.float32(), "McAlpine-EFLAW readability: (words + words <= 3 chars) / sentences")]
_TOKEN_COLS = [
    Column(TPC_COLUMN, pa.float32(), "tokens per character (extreme tokenization)"),
    Column(TPB_COLUMN, pa.float32(), "tokens per UTF-8 byte"),
]


def _unique_names(items: list[Any], what: str) -> list[Any]:
    names = [m.name for m in items]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"{what}: names must be distinct, repeated: {sorted(dup)}")
    return items


# ------------------------------------------------------------------------------- fastText


class FastTextAnnotateOptions(StrictModel):
    models: list[FastTextModelSpec] = Field(min_length=1, description="fastText models; each writes P(label) to ft_<name>")
    batch_size: int = Field(256, ge=1, description="documents per predict call")

    @field_validator("models")
    @classmethod
    def _distinct(cls, v: list[FastTextModelSpec]) -> list[FastTextModelSpec]:
        return _unique_names(v, "models")

    @staticmethod
    def output_columns(opts: "FastTextAnnotateOptions") -> list[Column]:
        return [Column(m.out_column, pa.float32(), f"P({m.label}) of fastText model {m.name}") for m in opts.models]


@register_stage("fasttext_annotate", FastTextAnnotateOptions,
                "fastText classifiers (local .bin/.ftz or hub): P(label) per model, several models in one pass",
                columns=FastTextAnnotateOptions.output_columns, group="filter")
def build_fasttext(opts: FastTextAnnotateOptions, ctx: BuildContext) -> None:
    ctx.add(FastTextAnnotator(opts.models, opts.batch_size))


class CategoryOptions(StrictModel):
    preset: Literal["category"] | None = Field(
        "category", description="category: GneissWeb's four hub classifiers (medical, education, technology, science)")
    models: list[CategoryModelSpec] | None = Field(None, description="category models (replace the preset's)")
    batch_size: int = Field(256, ge=1, description="documents per predict call")

    @model_validator(mode="after")
    def _models(self) -> "CategoryOptions":
        if self.models is None:
            if self.preset is None:
                raise ValueError("give `models:` or `preset: category`")
            self.models = [CategoryModelSpec(**m) for m in GNEISSWEB_CATEGORY_MODELS]
        _unique_names(self.models, "models")
        return self

    @staticmethod
    def output_columns(opts: "CategoryOptions") -> list[Column]:
        return [Column(m.out_column, pa.float32(), f"1 - P({m.negative_label}) of the {m.name} classifier")
                for m in opts.models or []] + _CATEGORY_COLS


@register_stage("category_classify", CategoryOptions,
                "fastText category classifiers; a doc is category (is_category) if any says its category",
                columns=CategoryOptions.output_columns, group="filter")
def build_category(opts: CategoryOptions, ctx: BuildContext) -> None:
    ctx.add(CategoryAnnotator(opts.models or [], opts.batch_size))


# ------------------------------------------------------------------------------- readability / tokens


class ReadabilityOptions(StrictModel):
    batch_size: int = Field(256, ge=1, description="documents per batch")


@register_stage("readability", ReadabilityOptions, "McAlpine-EFLAW readability score (eflaw)",
                columns=_EFLAW_COLS, group="filter")
def build_readability(opts: ReadabilityOptions, ctx: BuildContext) -> None:
    ctx.add(ReadabilityAnnotator(opts.batch_size))


class TokenizationOptions(StrictModel):
    tokenizer: ModelRef = Field(GNEISSWEB_TOKENIZER, description="local tokenizer.json (or folder holding one) or hub repo id")
    batch_size: int = Field(256, ge=1, description="documents per encode_batch call")


@register_stage("extreme_tokenization", TokenizationOptions, "tokens per character and per byte",
                columns=_TOKEN_COLS, group="filter")
def build_tokenization(opts: TokenizationOptions, ctx: BuildContext) -> None:
    ctx.add(TokenizationAnnotator(opts.tokenizer, opts.batch_size))


# ------------------------------------------------------------------------------- rule


def _compile_rule(keep: str | None, clauses: dict[str, str], params: dict, preset: str | None) -> Rule:
    """Compile a rule inside an option validator: pydantic reports a ValueError under the stage's key."""
    try:
        return build_rule(keep, clauses, params, preset, "")
    except ConfigError as e:
        raise ValueError("; ".join(e.problems)) from None


class RuleOptions(StrictModel):
    preset: Literal["gneissweb"] | None = Field(
        None, description="gneissweb: start from GneissWeb's clauses, thresholds and keep rule")
    keep: str | None = Field(None, description="the keep expression (e.g. 'FT and (READ or EXT)'); see README grammar")
    clauses: dict[str, str] = Field(default_factory=dict, description="named sub-expressions; a drop names the one that failed")
    params: dict[str, float | int | bool | str] = Field(default_factory=dict, description="named constants (thresholds)")

    _rule: Rule | None = None

    @model_validator(mode="after")
    def _compile(self) -> "RuleOptions":
        self._rule = _compile_rule(self.keep, self.clauses, self.params, self.preset)
        return self

    @property
    def rule(self) -> Rule:
        assert self._rule is not None
        return self._rule


@register_stage("quality_rule", RuleOptions,
                "keep documents for which a rule over annotation columns holds; drops name the failed clause",
                group="filter")
def build_rule_stage(opts: RuleOptions, ctx: BuildContext) -> None:
    ctx.add(RuleFilter(opts.rule))


# ------------------------------------------------------------------------------- the ensemble


class GneissWebOptions(StrictModel):
    quality_models: list[FastTextModelSpec] = Field(
        default_factory=lambda: [FastTextModelSpec(**m) for m in GNEISSWEB_QUALITY_MODELS],
        description="quality classifiers (default: DCLM fasttext-oh-eli5 as dclm, GneissWeb.Quality_annotator as cosmo)")
    category_models: list[CategoryModelSpec] = Field(
        default_factory=lambda: [CategoryModelSpec(**m) for m in GNEISSWEB_CATEGORY_MODELS],
        description="category classifiers (default: GneissWeb's medical, education, technology, science)")
    tokenizer: ModelRef = Field(GNEISSWEB_TOKENIZER, description="tokenizer.json path or hub repo (GneissWeb: StarCoder)")
    params: dict[str, float | int | bool | str] = Field(default_factory=dict,
                                                        description="threshold overrides (dclm_min, cosmo_min, eflaw_cat_max, ...)")
    clauses: dict[str, str] = Field(default_factory=dict, description="clause overrides (CAT, NCAT, FT, READ, EXT)")
    keep: str | None = Field(None, description="keep expression override (default FT and (READ or EXT))")
    annotate_only: bool = Field(False, description="write the columns but drop nothing")
    batch_size: int = Field(256, ge=1, description="documents per batch")
    kernel: Literal["fast", "reference"] = Field(
        "fast", description="fast: fastokens for the bundled GPT-2 tokenizer + one-pass EFLAW; reference: HF tokenizers + "
                            "EFLAW transcribed step by step from textstat (the previous kernel; identical columns, slower)")

    _rule: Rule | None = None

    @model_validator(mode="after")
    def _compile(self) -> "GneissWebOptions":
        _unique_names(self.quality_models, "quality_models")
        _unique_names(self.category_models, "category_models")
        self._rule = _compile_rule(self.keep, self.clauses, self.params, "gneissweb")
        return self

    @property
    def rule(self) -> Rule:
        assert self._rule is not None
        return self._rule

    @staticmethod
    def output_columns(opts: "GneissWebOptions") -> list[Column]:
        return (FastTextAnnotateOptions.output_columns(FastTextAnnotateOptions.model_construct(models=opts.quality_models))
                + CategoryOptions.output_columns(CategoryOptions.model_construct(models=opts.category_models))
                + _EFLAW_COLS + _TOKEN_COLS)


@register_stage("gneissweb_ensemble", GneissWebOptions,
                "GneissWeb quality ensemble: 2 quality + 4 category fastText models, EFLAW, tokens/char, the rule",
                columns=GneissWebOptions.output_columns, group="filter")
def build_gneissweb(opts: GneissWebOptions, ctx: BuildContext) -> None:
    ctx.add(GneissWebEnsemble(opts.quality_models, opts.category_models, opts.tokenizer,
                              None if opts.annotate_only else opts.rule, opts.batch_size, kernel=opts.kernel))


# ------------------------------------------------------------------------------- datatrove heuristics


def _heuristic(stage: str, options: type[StrictModel], summary: str) -> None:
    def build(opts: StrictModel, ctx: BuildContext) -> None:
        ctx.add(WrappedFilter(heuristics.make_filter(stage, opts)))

    register_stage(stage, options, summary, group="filter")(build)


_heuristic("gopher_quality", heuristics.GopherQualityOptions, "datatrove GopherQualityFilter (word counts, symbols, stop words)")
_heuristic("gopher_repetition", heuristics.GopherRepetitionOptions, "datatrove GopherRepetitionFilter (repeated lines, n-grams)")
_heuristic("c4_quality", heuristics.C4QualityOptions, "datatrove C4QualityFilter (may remove lines: edits the text)")
_heuristic("fineweb_quality", heuristics.FineWebQualityOptions, "datatrove FineWebQualityFilter (punctuation, short lines)")


# ------------------------------------------------------------------------------- checks before a run


def _prepare_models(models: list[Any], key: str, pf: Any, negative: bool = False) -> None:
    """Each model exists, is a fastText model and has its label; a hub id becomes the cached local file."""
    for k, m in enumerate(models):
        where = f"{key}[{k}] ({m.name})"
        path = pf.model_file(m.path, f"{pf.key}.{where}", m.filename)
        if path is None:
            continue
        if pf.is_local(path):
            m.path, m.filename = path, None  # tasks load the resolved file: no hub access per task
            pf.check_label(path, m.negative_label if negative else m.label, f"{pf.key}.{where}")


def _prepare_tokenizer(opts: Any, pf: Any) -> None:
    path = pf.tokenizer_file(opts.tokenizer, f"{pf.key}.tokenizer")
    if path is not None and pf.is_local(path):
        opts.tokenizer = path


@register_prepare("fasttext_annotate")
def prepare_fasttext(opts: FastTextAnnotateOptions, pf: Any) -> None:
    _prepare_models(opts.models, "models", pf)


@register_prepare("category_classify")
def prepare_category(opts: CategoryOptions, pf: Any) -> None:
    _prepare_models(opts.models or [], "models", pf, negative=True)


@register_prepare("extreme_tokenization")
def prepare_tokenization(opts: TokenizationOptions, pf: Any) -> None:
    _prepare_tokenizer(opts, pf)


@register_prepare("quality_rule")
def prepare_rule(opts: RuleOptions, pf: Any) -> None:
    pf.check_names(opts.rule.columns, f"{pf.key}.keep")


@register_prepare("gneissweb_ensemble")
def prepare_gneissweb(opts: GneissWebOptions, pf: Any) -> None:
    _prepare_models(opts.quality_models, "quality_models", pf)
    _prepare_models(opts.category_models, "category_models", pf, negative=True)
    _prepare_tokenizer(opts, pf)
    own = [c.name for c in GneissWebOptions.output_columns(opts)]
    pf.check_names(opts.rule.columns, f"{pf.key}.keep", own)
