"""Extreme-tokenization annotation: how many tokens a document needs per character and per byte.

Text that a tokenizer splits into unusually many (garbled, tables of numbers, foreign scripts)
or unusually few tokens (long repeated runs) per character is rarely good training data.
GneissWeb used the StarCoder tokenizer; here the tokenizer is a config choice: a local
`tokenizer.json` (HF `tokenizers` format) or a hub repository holding one. Documents are encoded
in batches with `encode_batch_fast` (no offsets: only the counts are needed), no special tokens,
no truncation.
"""

from __future__ import annotations

from typing import Sequence

from .model_refs import resolve_model_file


class TokenCounter:
    """Counts tokens of many texts at once. Loads the tokenizer lazily (in the worker process)."""

    def __init__(self, tokenizer: str, filename: str | None = None) -> None:
        self.ref = tokenizer
        self.filename = filename
        self._tok = None

    def __getstate__(self) -> dict:
        return {"ref": self.ref, "filename": self.filename, "_tok": None}

    @property
    def tokenizer(self):  # type: ignore[no-untyped-def]
        if self._tok is None:
            from tokenizers import Tokenizer

            path = resolve_model_file(self.ref, self.filename or "tokenizer.json", (".json",), "tokenizer")
            tok = Tokenizer.from_file(path)
            tok.no_truncation()
            tok.no_padding()
            self._tok = tok
        return self._tok

    def count(self, texts: Sequence[str]) -> list[int]:
        tok = self.tokenizer
        encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
        return [len(e.ids) for e in encode(list(texts), add_special_tokens=False)]


def token_densities(n_tokens: int, text: str) -> tuple[float, float]:
    """(tokens per character, tokens per UTF-8 byte); (0.0, 0.0) for an empty text."""
    if not text:
        return 0.0, 0.0
    return n_tokens / len(text), n_tokens / len(text.encode("utf-8"))
