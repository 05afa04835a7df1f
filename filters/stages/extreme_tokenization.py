"""extreme_tokenization: tokens per character and per UTF-8 byte of each document.

The token counting (engines, the bundled GPT-2 fast path) is in `filters/extreme_tokenization.py`,
a kernel module that shares this stage's name (see the layout in docs/development.md).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from datatrove.data import Document
from pydantic import Field

from curate.core.stage_api import Column, ModelRef, PreflightContext, StrictModel, register_prepare, register_stage

from ..gneissweb_recipe import GNEISSWEB_TOKENIZER
from ..token_counts import TokenCounter, token_densities
from ._batch import BatchAnnotator

TPC_COLUMN = "tokens_per_char"
TPB_COLUMN = "tokens_per_byte"
TOKEN_COLUMNS = [
    Column(TPC_COLUMN, pa.float32(), "tokens per character (extreme tokenization)"),
    Column(TPB_COLUMN, pa.float32(), "tokens per UTF-8 byte"),
]


class TokenizationOptions(StrictModel):
    tokenizer: ModelRef = Field(
        GNEISSWEB_TOKENIZER, description="local tokenizer.json (or folder holding one) or hub repo id"
    )
    batch_size: int = Field(256, ge=1, description="documents per encode_batch call")


def write_densities(docs: list[Document], counts: list[int]) -> None:
    """Each document's token count as tokens per character and per byte, into its metadata."""
    for d, n in zip(docs, counts):
        d.metadata[TPC_COLUMN], d.metadata[TPB_COLUMN] = token_densities(n, d.text)


@register_stage(
    "extreme_tokenization",
    TokenizationOptions,
    "tokens per character and per byte",
    columns=TOKEN_COLUMNS,
)
class TokenizationAnnotator(BatchAnnotator):
    name = "extreme tokenization"

    def __init__(self, opts: TokenizationOptions, label: str | None = None) -> None:
        super().__init__(opts.batch_size, label)
        self.counter = TokenCounter(opts.tokenizer)

    def annotate(self, docs: list[Document]) -> None:
        write_densities(docs, self.counter.count([d.text for d in docs]))


def prepare_tokenizer(opts: Any, pf: PreflightContext) -> None:
    """`opts.tokenizer` parses; a hub id becomes the cached local file (also used by gneissweb_ensemble)."""
    path = pf.tokenizer_file(opts.tokenizer, f"{pf.key}.tokenizer")
    if path is not None and pf.is_local(path):
        opts.tokenizer = path


@register_prepare("extreme_tokenization")
def prepare_tokenization(opts: TokenizationOptions, pf: PreflightContext) -> None:
    prepare_tokenizer(opts, pf)
