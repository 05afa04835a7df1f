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

import itertools
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from curate.pipeline.errors import ConfigError, CurateError

from .substring import Shard

DEFAULT_TOKENIZER = Path(__file__).parent / "assets" / "gpt2"
# texts per thread-pool task: large enough that task overhead vanishes, small enough to bound memory
CHUNK_DOCS = 256
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
        # a special token to join a chunk's texts with (see _encode_chunk); GPT-2 has <|endoftext|>
        self._joiner = next(iter(special), None)
        self._joiner_id = special.get(self._joiner, -1)
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
        self._joiner = None
        self._tok = Tokenizer.from_file(str(file))
        vocab = self._tok.get_vocab(with_added_tokens=True)
        added = {t["content"] for t in spec.get("added_tokens", [])}
        self.byte_len = np.zeros(max(vocab.values()) + 1, dtype=np.int64)
        for tok, i in vocab.items():
            self.byte_len[i] = len(tok.encode()) if tok in added else len(_token_bytes(tok))

    # -- use ---------------------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """One text's ids (uint32). Special-token text is ordinary text here."""
        if self.engine == "tiktoken":
            return self._enc.encode_to_numpy(text, disallowed_special=())
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=np.uint32)

    def _encode_chunk(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids of all texts, each followed by `sep_id`; the texts' lengths in ids)."""
        if self._joiner is not None and not any(self._joiner in t for t in texts):
            # one call for the whole chunk: tiktoken encodes the pieces between special tokens
            # independently, so joining with one gives each text's own ids, the special id between them
            # (ordinary text never encodes to it). A chunk that contains the special text itself is
            # encoded text by text instead.
            flat = self._enc.encode_to_numpy(self._joiner.join(texts) + self._joiner, allowed_special={self._joiner})
            is_sep = flat == self._joiner_id
            lengths = np.diff(np.flatnonzero(is_sep), prepend=-1) - 1
            return np.where(is_sep, np.uint32(self.sep_id), flat), lengths
        if self.engine == "tiktoken":
            ids = [self.encode(t) for t in texts]
        else:
            ids = [np.asarray(e.ids, dtype=np.uint32)
                   for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]
        lengths = np.fromiter((a.shape[0] for a in ids), dtype=np.int64, count=len(ids))
        sep = np.full(1, self.sep_id, dtype=np.uint32)
        return np.concatenate([x for a in ids for x in (a, sep)] or [np.zeros(0, np.uint32)]), lengths

    def _chunks(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`_encode_chunk` of CHUNK_DOCS texts at a time, in order. Threads encode a few chunks ahead,
        never the whole shard: per-document tasks cost more than the encoding, and results would pile up."""
        spans = range(0, len(texts), CHUNK_DOCS)
        if self.threads == 1 or len(spans) < 2:
            for a in spans:
                yield self._encode_chunk(texts[a : a + CHUNK_DOCS])
            return
        with ThreadPoolExecutor(self.threads) as pool:
            todo = iter(spans)
            pending = deque(pool.submit(self._encode_chunk, texts[a : a + CHUNK_DOCS])
                            for a in itertools.islice(todo, 2 * self.threads))
            while pending:
                done = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(self._encode_chunk, texts[nxt : nxt + CHUNK_DOCS]))
                yield done

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids per text (numpy, `self.dtype`)."""
        out = []
        for flat, lengths in self._chunks(texts):
            chunk = Shard.from_lengths(flat, lengths)
            out.extend(flat[s : s + n].astype(self.dtype) for s, n in zip(chunk.starts.tolist(), lengths.tolist()))
        return out

    def encode_shard(self, texts: Sequence[str], max_units: int) -> tuple[np.ndarray, np.ndarray]:
        """All texts' ids in one big-endian array (ready for the suffix sort), each text followed by `sep_id`.

        Returns (units, lengths). `max_units` bounds the total (a token is at least one byte, so the
        texts' UTF-8 bytes + one per text always do): the array is reserved at that size, but only the
        pages written become resident, and it is shrunk to the real length at the end. Each encoded
        chunk goes straight into place, so nothing per document outlives its chunk.
        """
        buf = np.empty(max_units, dtype=np.dtype(self.dtype).newbyteorder(">"))
        lengths = np.zeros(len(texts), dtype=np.int64)
        at = i = 0
        for flat, n in self._chunks(texts):
            k = flat.shape[0]
            if at + k > max_units:
                raise CurateError(f"tokenizer {self.path}: more than max_units={max_units} ids (texts {i}-{i + len(n)})")
            buf[at : at + k] = flat
            lengths[i : i + len(n)] = n
            at += k
            i += len(n)
        buf.resize((at,), refcheck=False)  # realloc: gives back the reserved tail (mremap), no copy
        return buf, lengths


_CACHE: dict[tuple[str, int], UnitTokenizer] = {}


def get_tokenizer(path: str | None = None, threads: int = 2) -> UnitTokenizer:
    """One tokenizer per (path, threads) per process: building tiktoken's tables takes ~0.3 s."""
    key = (str(path or DEFAULT_TOKENIZER), threads)
    if key not in _CACHE:
        _CACHE[key] = UnitTokenizer(path, threads)
    return _CACHE[key]
