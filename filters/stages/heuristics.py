"""gopher_quality, gopher_repetition, c4_quality, fineweb_quality: datatrove's heuristic filters, with options.

One module for the four, not one each: they are the same stage four times over (an options model
whose fields are the datatrove filter's keyword arguments, the filter run unchanged inside
`WrappedFilter`), so a table of four rows states once what four modules would repeat; only the
options models differ, and each is here. A new heuristic of that shape is one options model and
one row of `HEURISTICS`.

They run inside `WrappedFilter` for curate's accounting; the drop reason is datatrove's own (e.g.
`gopher_short_doc`, `top_4_gram`), prefixed by nothing. Their English word tokenizer is spaCy's
blank pipeline (`spacy.blank("en")`), which needs the `spacy` package but no model download;
without spacy the stage refuses to build with a message saying so. NLTK-based tokenizers would
need `punkt` downloaded and are not used.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from pydantic import Field

from curate.core.stage_api import (
    BuildContext,
    ConfigError,
    PreflightContext,
    StrictModel,
    WrappedFilter,
    edits_columns,
    register_prepare,
    register_stage,
)

_NEEDS_SPACY = (
    "datatrove's English word tokenizer needs spaCy, which is not installed (no model download, only the "
    "package): pip install 'curate[heuristics]' (or pip install spacy)"
)


def _has_spacy() -> bool:
    try:
        return importlib.util.find_spec("spacy") is not None
    except (ImportError, ValueError):  # a blocked import (sys.modules entry of None)
        return False


def require_spacy(stage: str) -> None:
    if not _has_spacy():
        raise ConfigError(f"stage {stage}: {_NEEDS_SPACY}")


def _prepare(opts: StrictModel, pf: PreflightContext) -> None:
    """validate / plan / run say it before any work, with the other problems."""
    if not _has_spacy():
        pf.problem(_NEEDS_SPACY)


class GopherQualityOptions(StrictModel):
    min_doc_words: int | None = Field(50, description="fewer words: gopher_short_doc")
    max_doc_words: int | None = Field(100_000, description="more words: gopher_long_doc")
    min_avg_word_length: int | None = Field(3, description="shorter mean word length: gopher_below_avg_threshold")
    max_avg_word_length: int | None = Field(10, description="longer mean word length: gopher_above_avg_threshold")
    max_symbol_word_ratio: float | None = Field(0.1, description="'#' and '...' per word")
    max_bullet_lines_ratio: float | None = Field(0.9, description="lines starting with a bullet")
    max_ellipsis_lines_ratio: float | None = Field(0.3, description="lines ending with an ellipsis")
    max_non_alpha_words_ratio: float | None = Field(
        0.8, description="min share of words with a letter (datatrove's name)"
    )
    min_stop_words: int | None = Field(2, description="fewer English stop words: gopher_enough_stop_words")
    stop_words: list[str] | None = Field(None, description="stop word list (default: Gopher's)")
    language: str = Field("eng", description="datatrove language code (word tokenizer)")


class GopherRepetitionOptions(StrictModel):
    dup_line_frac: float | None = Field(0.3, description="share of duplicated lines")
    dup_para_frac: float | None = Field(0.3, description="share of duplicated paragraphs")
    dup_line_char_frac: float | None = Field(0.2, description="share of characters in duplicated lines")
    dup_para_char_frac: float | None = Field(0.2, description="share of characters in duplicated paragraphs")
    top_n_grams: list[tuple[int, float]] = Field(
        [(2, 0.2), (3, 0.18), (4, 0.16)], description="[n, max share of chars in the most common n-gram]"
    )
    dup_n_grams: list[tuple[int, float]] = Field(
        [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.1)],
        description="[n, max share of chars in duplicated n-grams]",
    )
    language: str = Field("eng", description="datatrove language code (word tokenizer)")


class C4QualityOptions(StrictModel):
    split_paragraph: bool = Field(True, description="split lines on \\n (False: on sentences)")
    remove_citations: bool = Field(True, description="remove wikipedia-style [1] citations (edits the text)")
    filter_no_terminal_punct: bool = Field(
        True, description="remove lines without terminal punctuation (edits the text)"
    )
    min_num_sentences: int = Field(5, description="drop docs with fewer sentences (-1: off)")
    min_words_per_line: int = Field(3, description="remove lines with fewer words (-1: off)")
    max_word_length: int = Field(1000, description="remove lines with a longer word (-1: off)")
    filter_lorem_ipsum: bool = Field(True, description="drop docs containing lorem ipsum")
    filter_javascript: bool = Field(True, description="remove lines mentioning javascript")
    filter_curly_bracket: bool = Field(True, description="drop docs containing '{'")
    filter_policy: bool = Field(True, description="remove lines with policy boilerplate")
    language: str = Field("eng", description="datatrove language code (word tokenizer)")
    record_edits: bool = Field(
        True, description="record the removed lines and citations in the edits column, for `curate diff`"
    )


class FineWebQualityOptions(StrictModel):
    line_punct_thr: float = Field(0.12, description="min share of lines ending in punctuation")
    line_punct_exclude_zero: bool = Field(False, description="do not drop docs with no punctuated line at all")
    stop_chars: list[str] | None = Field(None, description="characters that count as terminal punctuation")
    short_line_thr: float = Field(0.67, description="max share of short lines")
    short_line_length: int = Field(30, description="a line this short or shorter is short")
    char_duplicates_ratio: float = Field(0.01, description="max share of chars in duplicated lines")
    new_line_ratio: float = Field(0.3, description="max newlines per word")
    language: str = Field("eng", description="datatrove language code (word tokenizer)")


def _gopher_repetition_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    kw["top_n_grams"] = tuple(tuple(x) for x in kw["top_n_grams"])
    kw["dup_n_grams"] = tuple(tuple(x) for x in kw["dup_n_grams"])
    return kw


def _c4_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    kw.pop("record_edits")  # curate's, not datatrove's
    return kw


def _fineweb_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    if kw["stop_chars"] is not None:
        kw["stop_chars"] = tuple(kw["stop_chars"])
    return kw


# stage -> (options, datatrove filter class name, options' dump -> the filter's kwargs, summary)
HEURISTICS: dict[str, tuple[type[StrictModel], str, Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "gopher_quality": (
        GopherQualityOptions,
        "GopherQualityFilter",
        dict,
        "datatrove GopherQualityFilter (word counts, symbols, stop words)",
    ),
    "gopher_repetition": (
        GopherRepetitionOptions,
        "GopherRepetitionFilter",
        _gopher_repetition_kwargs,
        "datatrove GopherRepetitionFilter (repeated lines, n-grams)",
    ),
    "c4_quality": (
        C4QualityOptions,
        "C4QualityFilter",
        _c4_kwargs,
        "datatrove C4QualityFilter (may remove lines: edits the text)",
    ),
    "fineweb_quality": (
        FineWebQualityOptions,
        "FineWebQualityFilter",
        _fineweb_kwargs,
        "datatrove FineWebQualityFilter (punctuation, short lines)",
    ),
}


def make_filter(stage: str, opts: StrictModel) -> Any:
    """The datatrove filter for `stage` built from validated options."""
    require_spacy(stage)
    from datatrove.pipeline import filters

    _, cls_name, kwargs, _ = HEURISTICS[stage]
    return getattr(filters, cls_name)(**kwargs(opts.model_dump()))


def _register(stage: str) -> None:
    options, _, _, summary = HEURISTICS[stage]

    def build(opts: StrictModel, ctx: BuildContext) -> None:
        ctx.add(WrappedFilter(make_filter(stage, opts), record_edits=getattr(opts, "record_edits", False)))

    build.__qualname__ = build.__name__ = f"build_{stage}"  # one name per stage in error messages
    register_stage(stage, options, summary, columns=edits_columns)(build)
    register_prepare(stage)(_prepare)


for _stage in HEURISTICS:
    _register(_stage)
