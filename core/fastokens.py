"""fastokens (a Rust BPE tokenizer) for curate's two users: exact-substring dedup's GPT-2 ids
(dedup/tokenize.py) and the quality ensemble's token counts (filters/token_counts.py).

fastokens caches the ids of every word it has seen and never frees that cache: ~70 MB after 32 Mi
characters of web text, ~100-130 MB after 100 MB, more for garbled text. Both users bound it by one
policy: a `FastokensTokenizer` counts the characters it has encoded since it was loaded, and
`release()`, called by its user where dropping the cache helps (dedup: once a shard is tokenized,
before the suffix sort; counts: before each batch), lets the tokenizer go once that count reaches
RELOAD_CHARS. The next encode loads a fresh one from the same file (~0.35 s of CPU).

RELOAD_CHARS = 32 Mi characters (~8M GPT-2 ids of English web text): below it the cache is small
next to what either user holds, and a dedup shard of a few MB (small tasks, tests) does not pay a
reload each; above it a dedup shard's cache would sit beside its suffix arrays through the sort's
peak. For the token counts (~1.4-3.4 MB/s per ensemble task, in a background thread) a reload
every 32 Mi characters is ~1-3 % of that thread's time.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["RELOAD_CHARS", "FastokensTokenizer", "fastokens_installed"]

RELOAD_CHARS = 32 * 2**20


def fastokens_installed() -> bool:
    return importlib.util.find_spec("fastokens") is not None


class FastokensTokenizer:
    """A fastokens tokenizer loaded from a `tokenizer.json`, reloaded by the policy above.

    `split_special_tokens`: True reads special-token text typed in a document (`<|endoftext|>`) as
    ordinary text, False as the one special id (HF `tokenizers`' default). No special tokens are added.
    """

    def __init__(self, path: str, split_special_tokens: bool, reload_chars: int | None = None) -> None:
        self.path = str(path)
        self.split_special_tokens = split_special_tokens
        self.reload_chars = RELOAD_CHARS if reload_chars is None else reload_chars
        self.loads = 0  # how many times the file was loaded (1 + reloads)
        self.chars = 0  # characters encoded since the last load
        self._tok: Any = None
        _ = self.tokenizer

    def __getstate__(self) -> dict:  # the native tokenizer does not pickle: a copy loads its own on first use
        return {**self.__dict__, "_tok": None, "chars": 0}

    @property
    def tokenizer(self) -> Any:
        """The fastokens.Tokenizer, loaded now if it was let go."""
        if self._tok is None:
            import fastokens

            self._tok = fastokens.Tokenizer.from_file(self.path)
            self.loads += 1
            self.chars = 0
        return self._tok

    def release(self) -> bool:
        """Let the tokenizer (and its word cache) go if it has encoded RELOAD_CHARS characters since it was
        loaded; True when it did."""
        if self._tok is None or self.chars < self.reload_chars:
            return False
        self._tok = None
        return True

    def encode(self, text: str) -> np.ndarray:
        """One text's ids (uint32)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False, split_special_tokens=self.split_special_tokens).ids
        self.chars += len(text)
        return np.asarray(ids, dtype=np.uint32)

    def encode_batch_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(every text's ids concatenated, uint32; len(texts) + 1 offsets, uint64): text i's ids are
        ids[offsets[i] : offsets[i + 1]]. One call: fastokens' own threads split the batch."""
        texts = list(texts)
        raw, offsets = self.tokenizer.encode_batch_flat(
            texts, add_special_tokens=False, split_special_tokens=self.split_special_tokens
        )
        self.chars += sum(map(len, texts))
        return np.frombuffer(raw, dtype="<u4"), np.frombuffer(offsets, dtype="<u8")
