"""Tokenizers for exact-substring dedup: text -> unit ids, plus the byte length of every id.

Only byte-level BPE tokenizers are accepted (GPT-2 and its relatives). In those, every token id
stands for a fixed byte string, so the byte offset of a token inside its document is the running
sum of a per-id byte-length table: no offset mapping is needed and spans map back to text
exactly (see `cut.py` for what happens to a UTF-8 character split across two tokens).

Two engines:
- tiktoken, built offline from a folder holding `vocab.json` + `merges.txt` (the default, the
  bundled GPT-2 files): ~3.5x faster than HF `tokenizers` here and releases the GIL, so a thread
  pool encodes documents in parallel straight into numpy (no Python int lists).
- HF `tokenizers` from a `tokenizer.json` (fallback, or any other local byte-level tokenizer).
Both give identical ids for GPT-2 (tested on the bundled sample).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from curate.pipeline.errors import ConfigError, CurateError

DEFAULT_TOKENIZER = Path(__file__).parent / "assets" / "gpt2"
# GPT-2's pre-tokenizer split pattern (tiktoken's `gpt2` encoding uses the same)
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the printable stand-in character -> the raw byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _token_bytes(token: str) -> bytes:
    dec = _byte_decoder()
    return bytes(dec[ch] for ch in token)


class UnitTokenizer:
    """Text -> numpy arrays of token ids, with `byte_len[id]` (bytes of text per id)."""

    def __init__(self, path: str | os.PathLike | None = None, threads: int = 2) -> None:
        self.path = str(path or DEFAULT_TOKENIZER)
        self.threads = max(1, threads)
        p = Path(self.path)
        if p.is_dir() and (p / "vocab.json").is_file() and (p / "merges.txt").is_file():
            self._init_tiktoken(p)
        elif p.is_dir() and (p / "tokenizer.json").is_file():
            self._init_hf(p / "tokenizer.json")
        elif p.is_file() and p.suffix == ".json":
            self._init_hf(p)
        else:
            raise ConfigError(f"tokenizer: {self.path!r} is neither a folder with vocab.json + merges.txt "
                              "(or tokenizer.json) nor a tokenizer.json file")
        self.vocab_size = int(self.byte_len.shape[0])
        # one id past the vocabulary: never produced by the tokenizer, used as document separator
        self.sep_id = self.vocab_size
        self.dtype = np.uint16 if self.sep_id < 2**16 else np.uint32

    # -- engines ---------------------------------------------------------------------------------
    def _init_tiktoken(self, folder: Path) -> None:
        import tiktoken

        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        ranks: dict[bytes, int] = {}
        special: dict[str, int] = {}
        for tok, i in vocab.items():
            if tok.startswith("<|") and tok.endswith("|>"):
                special[tok] = i
            else:
                ranks[_token_bytes(tok)] = i
        # GPT-2's merge rank is its token id, so vocab.json alone gives tiktoken's ranks; check the
        # merges file agrees (each merge's result exists with an id above its parts)
        merges = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")[1:]
        for line in merges[:200]:
            if line.strip():
                a, b = line.split()
                if _token_bytes(a) + _token_bytes(b) not in ranks:
                    raise ConfigError(f"tokenizer: {folder}/merges.txt does not match vocab.json ({a!r} {b!r})")
        self.engine = "tiktoken"
        self._enc = tiktoken.Encoding(name=f"curate:{folder}", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                      special_tokens=special)
        n = max(max(ranks.values()), max(special.values(), default=0)) + 1
        self.byte_len = np.zeros(n, dtype=np.int64)
        for b, i in ranks.items():
            self.byte_len[i] = len(b)
        for s, i in special.items():  # never produced by encode_ordinary; length of its literal text
            self.byte_len[i] = len(s.encode())

    def _init_hf(self, file: Path) -> None:
        from tokenizers import Tokenizer

        spec = json.loads(file.read_text(encoding="utf-8"))
        kinds = json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
        if "ByteLevel" not in kinds:
            raise ConfigError(f"tokenizer: {file} is not a byte-level BPE tokenizer; exact-substring dedup needs one "
                              "(every token must stand for fixed bytes of text)")
        self.engine = "tokenizers"
        self._tok = Tokenizer.from_file(str(file))
        vocab = self._tok.get_vocab(with_added_tokens=True)
        added = {t["content"] for t in spec.get("added_tokens", [])}
        self.byte_len = np.zeros(max(vocab.values()) + 1, dtype=np.int64)
        for tok, i in vocab.items():
            self.byte_len[i] = len(tok.encode()) if tok in added else len(_token_bytes(tok))

    # -- use ---------------------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        if self.engine == "tiktoken":
            return self._enc.encode_to_numpy(text, disallowed_special=()).astype(self.dtype)
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=self.dtype)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids per text (numpy, `self.dtype`). Checks that the ids cover every byte of each text."""
        if self.engine == "tiktoken":
            if self.threads > 1 and len(texts) > 1:
                with ThreadPoolExecutor(self.threads) as pool:
                    out = list(pool.map(self.encode, texts, chunksize=64))
            else:
                out = [self.encode(t) for t in texts]
        else:
            out = []
            for i in range(0, len(texts), 1024):
                encs = self._tok.encode_batch(list(texts[i:i + 1024]), add_special_tokens=False)
                out.extend(np.asarray(e.ids, dtype=self.dtype) for e in encs)
        return out

    def check_lengths(self, ids: list[np.ndarray], byte_lengths: np.ndarray) -> None:
        """Every id's bytes must add up to the document's UTF-8 length, or spans would map wrongly."""
        got = np.array([int(self.byte_len[a].sum()) for a in ids], dtype=np.int64)
        bad = np.flatnonzero(got != byte_lengths)
        if bad.size:
            raise CurateError(f"tokenizer {self.path}: token bytes do not add up to the text for {bad.size} documents "
                              f"(first: {got[bad[0]]} vs {byte_lengths[bad[0]]} bytes); is it a byte-level BPE?")


_CACHE: dict[tuple[str, int], UnitTokenizer] = {}


def get_tokenizer(path: str | None = None, threads: int = 2) -> UnitTokenizer:
    """One tokenizer per (path, threads) per process: building tiktoken's tables takes ~0.3 s."""
    key = (str(path or DEFAULT_TOKENIZER), threads)
    if key not in _CACHE:
        _CACHE[key] = UnitTokenizer(path, threads)
    return _CACHE[key]
