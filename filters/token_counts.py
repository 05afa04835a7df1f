"""Extreme-tokenization annotation: how many tokens a document needs per character and per byte.

Text that a tokenizer splits into unusually many (garbled, tables of numbers, foreign scripts)
or unusually few tokens (long repeated runs) per character is rarely good training data.
GneissWeb used the StarCoder tokenizer; here the tokenizer is a config choice: a local
`tokenizer.json` (HF `tokenizers` format) or a hub repository holding one. Documents are encoded
in batches with no special tokens added and no truncation; only the counts are kept.

Engines: HF `tokenizers` (`encode_batch_fast`) for any tokenizer. When the configured file is the
bundled GPT-2 tokenizer (dedup/assets/gpt2/tokenizer.json, or a file with the same JSON), counts
come from `fastokens` instead (~30-60x faster here, no per-token Python objects), which
tests/filters/test_ensemble_kernels.py checks gives HF's count on every sample document and on
special-token text typed in a document (both encode `<|endoftext|>` as the one special id).
Other tokenizers stay on HF: fastokens was only verified for GPT-2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curate.core.fastokens import FastokensTokenizer, fastokens_installed
from curate.core.model_refs import resolve_model_file

BUNDLED_GPT2 = Path(__file__).resolve().parents[1] / "dedup" / "assets" / "gpt2" / "tokenizer.json"


def is_bundled_gpt2(path: str) -> bool:
    """True when `path` is the bundled GPT-2 tokenizer.json, or a file with exactly its JSON."""
    p = Path(path)
    try:
        if p.resolve() == BUNDLED_GPT2:
            return True
        if not BUNDLED_GPT2.is_file() or p.stat().st_size > 4 * BUNDLED_GPT2.stat().st_size:
            return False
        return json.loads(p.read_bytes()) == json.loads(BUNDLED_GPT2.read_bytes())
    except (OSError, ValueError):
        return False


class TokenCounter:
    """Counts tokens of many texts at once. Loads the tokenizer lazily (in the worker process).

    `engine`: None picks fastokens for the bundled GPT-2 (when installed), HF `tokenizers` otherwise;
    "tokenizers" forces HF (the reference path the tests and the benchmark compare against)."""

    def __init__(self, tokenizer: str, filename: str | None = None, engine: str | None = None) -> None:
        self.ref = tokenizer
        self.filename = filename
        self.engine = engine
        self._tok: Any = None  # tokenizers.Tokenizer, imported on first use
        self._fast: FastokensTokenizer | None = None

    def __getstate__(self) -> dict:
        return {"ref": self.ref, "filename": self.filename, "engine": self.engine, "_tok": None, "_fast": None}

    def _path(self) -> str:
        return resolve_model_file(self.ref, self.filename or "tokenizer.json", (".json",), "tokenizer")

    def load(self) -> None:
        """Load the engine now (so that a thread calling `count` later does no file I/O of its own)."""
        if self.engine == "fastokens" and self._fast is not None:
            return
        path = None
        if self.engine is None:
            path = self._path()
            self.engine = "fastokens" if is_bundled_gpt2(path) and fastokens_installed() else "tokenizers"
        if self.engine == "fastokens":
            # split_special_tokens=False: typed "<|endoftext|>" is the one special id, as in HF's default
            self._fast = FastokensTokenizer(path or self._path(), split_special_tokens=False)
        else:
            _ = self.tokenizer

    @property
    def tokenizer(self) -> Any:
        """The HF `tokenizers` tokenizer (loaded on first use, whatever the engine)."""
        if self._tok is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(self._path())
            tok.no_truncation()
            tok.no_padding()
            self._tok = tok
        return self._tok

    def count(self, texts: Sequence[str]) -> list[int]:
        self.load()
        if self.engine == "fastokens":
            return self._count_fast(texts)
        tok = self.tokenizer
        encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
        return [len(e.ids) for e in encode(list(texts), add_special_tokens=False)]

    def _count_fast(self, texts: Sequence[str]) -> list[int]:
        assert self._fast is not None
        self._fast.release()  # the memory bound (core/fastokens.py): a fresh tokenizer once the cache may be big
        _, offsets = self._fast.encode_batch_flat(texts)
        return np.diff(offsets).tolist()


def token_densities(n_tokens: int, text: str) -> tuple[float, float]:
    """(tokens per character, tokens per UTF-8 byte); (0.0, 0.0) for an empty text."""
    if not text:
        return 0.0, 0.0
    return n_tokens / len(text), n_tokens / len(text.encode("utf-8"))
