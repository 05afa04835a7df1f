"""Tokenizers for exact-substring dedup: text -> unit ids, plus the byte length of every id.

Only byte-level BPE tokenizers are accepted (GPT-2 and its relatives). In those, every token id
stands for a fixed byte string, so the byte offset of a token inside its document is the running
sum of a per-id byte-length table: no offset mapping is needed and spans map back to text
exactly (see `cut.py` for what happens to a UTF-8 character split across two tokens).

Engines, for a folder (the bundled GPT-2 by default), fastest first:
- fastokens (Rust, Apache-2.0) from the folder's `tokenizer.json`: ~120 MB/s here, ~10x tiktoken.
  Chosen by `tests/dedup/test_tokenizers.py`, which compares every candidate on PyPI (fastokens,
  tokie, kitoken, tiktoken) with HF `tokenizers` on a Unicode fuzz and real text; the whole 100 MB
  benchmark corpus is compared by `scripts/bench/esd_tokenizers.py`.
- tiktoken built offline from `vocab.json` + `merges.txt` (the fallback when fastokens is not
  installed, or for a folder without `tokenizer.json`): releases the GIL, so a thread pool encodes
  chunks of documents in parallel.
- HF `tokenizers` from a `tokenizer.json` file (any other local byte-level BPE tokenizer).
All give identical ids for GPT-2; special-token text inside a document (`<|endoftext|>` typed in
the text) is ordinary text for all of them (HF's `encode_special_tokens`).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from curate.core.errors import ConfigError, CurateError
from curate.core.fastokens import FastokensTokenizer, fastokens_installed

from .heap import trim_heap
from .substring import Shard

DEFAULT_TOKENIZER = Path(__file__).parent / "assets" / "gpt2"
# texts per thread-pool task: large enough that task overhead vanishes, small enough to bound memory
CHUNK_DOCS = 256
# GPT-2's pre-tokenizer split pattern (tiktoken's `gpt2` encoding uses the same)
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# fastokens encodes a chunk of about this much text per call (its own threads split the chunk); the
# ids of one chunk are a temporary of 4 bytes per token
FAST_CHUNK_BYTES = 1 * 2**20
ENGINES = ("fastokens", "tiktoken", "tokenizers")


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

    def __init__(self, path: str | os.PathLike | None = None, threads: int = 2, engine: str | None = None) -> None:
        """`engine`: one of ENGINES; default the fastest that can read `path` (fastokens for a folder with
        tokenizer.json + vocab.json + merges.txt when installed, else tiktoken, else HF tokenizers)."""
        self.path = str(path or DEFAULT_TOKENIZER)
        self.threads = max(1, threads)
        p = Path(self.path)
        if engine is not None and engine not in ENGINES:
            raise ConfigError(f"tokenizer engine {engine!r}: use one of {', '.join(ENGINES)}")
        pair = p.is_dir() and (p / "vocab.json").is_file() and (p / "merges.txt").is_file()
        spec = p / "tokenizer.json" if p.is_dir() else p
        if engine is None:
            if pair and spec.is_file() and fastokens_installed():
                engine = "fastokens"
            elif pair:
                engine = "tiktoken"
            elif spec.is_file() and spec.suffix == ".json":
                engine = "tokenizers"
        if engine == "fastokens" and spec.is_file():
            self._init_hf(spec, load=False)
            self._init_fastokens(spec)
        elif engine == "tiktoken" and pair:
            self._init_tiktoken(p)
        elif engine == "tokenizers" and spec.is_file():
            self._init_hf(spec)
        else:
            raise ConfigError(
                f"tokenizer: {self.path!r} is neither a folder with vocab.json + merges.txt "
                "(or tokenizer.json) nor a tokenizer.json file"
            )
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
        self._joiner_id = special.get(self._joiner, -1) if self._joiner is not None else -1
        self._enc = tiktoken.Encoding(
            name=f"curate:{folder}", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=special
        )
        n = max(max(ranks.values()), max(special.values(), default=0)) + 1
        self.byte_len = np.zeros(n, dtype=np.int64)
        for token, i in ranks.items():
            self.byte_len[i] = len(token)
        for s, i in special.items():  # never produced by encode_ordinary; length of its literal text
            self.byte_len[i] = len(s.encode())

    def _init_fastokens(self, file: Path) -> None:
        self.engine = "fastokens"
        # special-token text inside a document is ordinary text (as for the other engines)
        self._fast = FastokensTokenizer(str(file), split_special_tokens=True)
        trim_heap()  # the JSON parsing garbage of both loaders sits in freed heap pages: give them back (glibc)

    def release(self) -> None:
        """Let go of what the engine keeps between calls. The step calls this once a shard is tokenized: a
        fastokens word cache (never given back; see core/fastokens.py for when it is big enough to drop) is
        then not held beside the shard's text and arrays through the suffix sort, and the next shard loads
        a fresh tokenizer (~0.35 s of CPU, ~4 % of a 200 MB shard's time). Loading it in the background
        during the sort would hide that time but put its cache back at the peak."""
        if self.engine == "fastokens" and self._fast.release():
            trim_heap()

    def _init_hf(self, file: Path, load: bool = True) -> None:
        """Check the file is byte-level BPE and build the byte-length table from its vocabulary; with `load`,
        also load it into HF `tokenizers` to encode with."""
        spec = json.loads(file.read_text(encoding="utf-8"))
        kinds = json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
        if "ByteLevel" not in kinds:
            raise ConfigError(
                f"tokenizer: {file} is not a byte-level BPE tokenizer; exact-substring dedup needs one "
                "(every token must stand for fixed bytes of text)"
            )
        self.engine = "tokenizers"
        self._joiner = None
        added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        vocab = {**spec["model"]["vocab"], **added}
        if load:
            from tokenizers import Tokenizer

            self._tok = Tokenizer.from_file(str(file))
            self._tok.encode_special_tokens = True  # special-token text in a document is ordinary text
            vocab = self._tok.get_vocab(with_added_tokens=True)
        self.byte_len = np.zeros(max(vocab.values()) + 1, dtype=np.int64)
        for tok, i in vocab.items():
            self.byte_len[i] = len(tok.encode()) if tok in added else len(_token_bytes(tok))

    # -- use ---------------------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """One text's ids (uint32). Special-token text is ordinary text here."""
        if self.engine == "fastokens":
            return self._fast.encode(text)
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
            ids = [
                np.asarray(e.ids, dtype=np.uint32)
                for e in self._tok.encode_batch(list(texts), add_special_tokens=False)
            ]
        lengths = np.fromiter((a.shape[0] for a in ids), dtype=np.int64, count=len(ids))
        sep = np.full(1, self.sep_id, dtype=np.uint32)
        return np.concatenate([x for a in ids for x in (a, sep)] or [np.zeros(0, np.uint32)]), lengths

    def _fast_chunk(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`_encode_chunk` with fastokens: one call for the chunk (its threads split it), ids as uint32."""
        ids, offsets = self._fast.encode_batch_flat(texts)
        lengths = np.diff(offsets).astype(np.int64)
        out = np.empty(ids.shape[0] + lengths.shape[0], dtype=np.uint32)
        is_sep = np.zeros(out.shape[0], dtype=bool)
        is_sep[np.cumsum(lengths + 1) - 1] = True
        out[is_sep] = self.sep_id
        out[~is_sep] = ids
        return out, lengths

    def _chunks(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`_encode_chunk` of CHUNK_DOCS texts at a time, in order. Threads encode a few chunks ahead,
        never the whole shard: per-document tasks cost more than the encoding, and results would pile up.
        fastokens takes chunks of ~FAST_CHUNK_BYTES of text instead, one call each (it has its own threads)."""
        if self.engine == "fastokens":
            sizes = (
                texts.nbytes
                if hasattr(texts, "nbytes")  # a HeldText: no decoding just to measure
                else np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
            )  # characters: enough
            ends = np.searchsorted(
                np.cumsum(sizes), np.arange(1, sizes.sum() // FAST_CHUNK_BYTES + 1) * FAST_CHUNK_BYTES
            )
            bounds = [0, *sorted({int(e) + 1 for e in ends if e + 1 < len(texts)}), len(texts)]
            for a, z in zip(bounds[:-1], bounds[1:]):
                yield self._fast_chunk(texts[a:z])
            return
        spans = range(0, len(texts), CHUNK_DOCS)
        if self.threads == 1 or len(spans) < 2:
            for a in spans:
                yield self._encode_chunk(texts[a : a + CHUNK_DOCS])
            return
        with ThreadPoolExecutor(self.threads) as pool:
            todo = iter(spans)
            pending = deque(
                pool.submit(self._encode_chunk, texts[a : a + CHUNK_DOCS])
                for a in itertools.islice(todo, 2 * self.threads)
            )
            while pending:
                done = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(self._encode_chunk, texts[nxt : nxt + CHUNK_DOCS]))
                yield done

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids per text (numpy, `self.dtype`)."""
        out: list[np.ndarray] = []
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
                raise CurateError(
                    f"tokenizer {self.path}: more than max_units={max_units} ids (texts {i}-{i + len(n)})"
                )
            buf[at : at + k] = flat
            lengths[i : i + len(n)] = n
            at += k
            i += len(n)
        buf.resize((at,), refcheck=False)  # realloc: gives back the reserved tail (mremap), no copy
        return buf, lengths


_CACHE: dict[tuple[str, int, str | None], UnitTokenizer] = {}


def get_tokenizer(path: str | None = None, threads: int = 2, engine: str | None = None) -> UnitTokenizer:
    """One tokenizer per (path, threads, engine) per process: building the tables takes ~0.3 s."""
    key = (str(path or DEFAULT_TOKENIZER), threads, engine)
    if key not in _CACHE:
        _CACHE[key] = UnitTokenizer(path, threads, engine)
    return _CACHE[key]


# -- candidates ------------------------------------------------------------------------------------
# GPT-2 tokenizers on PyPI, fastest first (MB/s of the 100 MB benchmark text on this 2-core machine,
# scripts/bench/esd_tokenizers.py). Each encodes a list of texts to id lists, special-token text as
# ordinary text where the library allows it. tests/dedup/test_tokenizers.py compares every installed
# one with HF `tokenizers` and checks that the default engine is the fastest one that agrees.
SPEED_ORDER = ("fastokens", "tokie", "kitoken", "tiktoken")


def candidate_encoder(name: str, folder: str | os.PathLike | None = None):  # noqa: ANN201 (a callable)
    """`texts -> list of id arrays` for one candidate, built from the local GPT-2 files (no hub access)."""
    folder = Path(folder or DEFAULT_TOKENIZER)
    spec = str(folder / "tokenizer.json")
    if name == "fastokens":
        tok = UnitTokenizer(folder, engine="fastokens")
        return tok.encode_batch
    if name == "tiktoken":
        tok = UnitTokenizer(folder, engine="tiktoken", threads=1)
        return tok.encode_batch
    if name == "tokie":
        import tokie

        t = tokie.Tokenizer.from_json(spec)  # no switch for special-token text: it becomes the special id

        def enc(texts: Sequence[str]) -> list[np.ndarray]:
            ids, lengths = t.encode_batch_flat(list(texts), add_special_tokens=False)
            return np.split(ids, np.cumsum(lengths.astype(np.int64))[:-1])

        return enc
    if name == "kitoken":
        import kitoken

        k = kitoken.Kitoken.from_tokenizers_file(spec)
        return lambda texts: [np.asarray(k.encode(t, False), dtype=np.uint32) for t in texts]
    if name == "tokenizers":  # the reference
        from tokenizers import Tokenizer

        hf = Tokenizer.from_file(spec)
        hf.encode_special_tokens = True
        return lambda texts: [
            np.asarray(e.ids, dtype=np.uint32) for e in hf.encode_batch(list(texts), add_special_tokens=False)
        ]
    raise ValueError(f"unknown tokenizer candidate {name!r}; known: {', '.join(SPEED_ORDER)}, tokenizers")


def candidate_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None
