"""MinHash near-duplicate dedup across all tasks of a run, on datatrove's four MinHash steps.

Plan (built by `stages.build_minhash`): the main flow stops at a barrier (documents handed off as
Parquet); a signatures job reads the handed-off documents with the same task count and writes
per-bucket signatures; a buckets job (one task per band) finds candidate pairs; a clusters job
(one task) unions them and assigns global cluster ids; the continuing job reads the same
handed-off documents and `MinhashFilter` drops every cluster member but one (reason
`near_duplicate`) and records `minhash_cluster_id` (null: no near-duplicate).

Signatures (`FastSignature`, the default): datatrove's text normalization (`simplify_text`: lowercase,
numbers to 0, punctuation to spaces, whitespace collapsed, diacritics removed; re-implemented with the
same result, its diacritics pass was a Python loop per character), words split at spaces, then
per batch of documents in numpy: each word hashed once (a polynomial over its bytes), each n-gram of
word hashes combined and mixed into one 64-bit shingle (no n-gram strings are built), and the
signatures of all documents of the batch computed by `rensa` (Rust, MinHash over the pre-hashed
shingles) in one call. The bucket files are datatrove's (`hashes_per_bucket` hashes + the document
index per record, sorted), so the buckets and clusters jobs are datatrove's own. Not bit-identical to
datatrove's or datasketch's MinHash (other hash functions), the same estimator of Jaccard similarity.
`WhitespaceSignature` is datatrove's signature step as before (`kernel: datatrove`, the benchmark's
baseline): datatrove loads a spaCy word tokenizer for English (not installed, downloads models), and
after its normalization a whitespace split gives the same words.

Optional verification (`verify_jaccard`): the signatures job also writes each document's sorted
shingle set, and the clusters job drops every candidate pair whose exact shingle Jaccard is below the
threshold before clustering (LSH alone keeps every pair that collides in one band).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable, Iterator

import numpy as np
from datatrove.data import Document
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupCluster, MinhashDedupSignature
from datatrove.utils.word_tokenizers import WordTokenizer
from datatrove.utils.text import NUMBERS_PATTERN, PUNCTUATION_TRANS, DEF_TEXT_NORM_CONFIG

from curate.core.steps import CurateStep

CLUSTER_ID = "minhash_cluster_id"


class WhitespaceWords(WordTokenizer):
    """Words split at whitespace: after datatrove's normalization this is what its spaCy English
    tokenizer yields, without spaCy (not installed; it downloads models)."""

    def __init__(self) -> None:
        super().__init__("en")

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


class WhitespaceSignature(MinhashDedupSignature):
    """datatrove's signature step with a whitespace word splitter instead of spaCy."""

    def __init__(self, output_folder: str, config: MinhashConfig) -> None:
        super().__init__(output_folder, config, language=WhitespaceWords())


# ------------------------------------------------------------------ fast signatures
BATCH_BYTES = 2 * 2**20  # text per numpy/rensa batch
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_BW = 0x100000001B3  # odd base of the word-bytes polynomial
_BN = np.uint64(0x9E3779B97F4A7C15)  # n-gram combination


def _char_class(chars: Iterable[int]) -> str:
    """A regex character class of these code points, as ranges."""
    cps = sorted(set(chars))
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(re.escape(chr(cps[i])) + ("-" + re.escape(chr(cps[j])) if j > i else ""))
        i = j + 1
    return "[" + "".join(parts) + "]"


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


# Planes that hold any nonspacing mark (Mn): the BMP, SMP, SIP and SSP (variation selectors supplement). Planes
# 3 (CJK letters), 4-13 (unassigned) and 15-16 (private use) hold none: scanning only these takes a fifth of the
# time of all 1.1M code points (0.66 s per process); tests/test_dedup_minhash.py checks it equals the full scan.
MARK_PLANES = (range(0, 0x30000), range(0xE0000, 0xF0000))


def nonspacing_marks(planes: Iterable[range] = MARK_PLANES) -> list[int]:
    """Code points of Unicode category Mn (what datatrove's diacritics removal drops) in these planes."""
    cat = unicodedata.category
    return [c for plane in planes for c in plane if cat(chr(c)) == "Mn"]


@lru_cache(maxsize=1)
def _tables() -> tuple[bytes, re.Pattern, re.Pattern, re.Pattern]:
    """(ASCII punctuation -> space as a bytes table, all punctuation as a regex, category Mn below and above
    U+FFFF as two regexes), from the same sources as datatrove's (its PUNCTUATION_TRANS table, unicodedata's
    categories). The marks are split because `re` tests a class of BMP characters with a bitmap but walks
    a list of ranges for astral ones (20x slower on the whole class)."""
    punct = [c for c, v in PUNCTUATION_TRANS.items() if v == ord(" ")]
    ascii_table = bytes(32 if (b in punct) else b for b in range(256))
    marks = nonspacing_marks()
    return (ascii_table, re.compile(_char_class(punct)), re.compile(_char_class(c for c in marks if c < 0x10000) + "+"),
            re.compile(_char_class(c for c in marks if c >= 0x10000) + "+"))


def simplify(text: str) -> str:
    """datatrove's `simplify_text` with its default config, the same output (tested), several times faster:
    ASCII text is translated as bytes, other text by compiled character classes instead of `str.translate`
    with a dict, and the diacritics pass is one regex instead of a Python generator over every character."""
    assert not (DEF_TEXT_NORM_CONFIG.norm_weekdays or DEF_TEXT_NORM_CONFIG.norm_monthnames)
    ascii_table, punct, marks, astral_marks = _tables()
    text = NUMBERS_PATTERN.sub("0", text.lower())
    # " ".join(split()) is datatrove's `\s+` -> " " on the stripped text: str.split, str.strip and re's \s
    # all use the same Unicode whitespace test (Py_UNICODE_ISSPACE)
    if text.isascii():
        return " ".join(text.encode("ascii").translate(ascii_table).decode("ascii").split())
    text = marks.sub("", unicodedata.normalize("NFD", " ".join(punct.sub(" ", text).split())))
    if _ASTRAL.search(text):
        text = astral_marks.sub("", text)
    return text.strip()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every input bit reaches every output bit."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _powers(base: int, n: int) -> np.ndarray:
    out = np.full(n, base, dtype=np.uint64)
    out[:1] = 1
    return np.cumprod(out, dtype=np.uint64)


_BYTE_TABLE = np.random.default_rng(0xB17E).integers(1, 2**63, 256, dtype=np.uint64)


def shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of each (simplified) text, all at once in numpy.

    Returns (flat hashes, offsets): text i's shingles are flat[offsets[i] : offsets[i + 1]]. A text of
    fewer than `ngram` words has none (as in datatrove). Words are split at single spaces (a simplified
    text has no other whitespace); the texts are joined with newlines to find where each ends."""
    data = np.frombuffer("\n".join(texts).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    offsets = np.zeros(len(texts) + 1, dtype=np.uint64)
    if data.shape[0] == 0:
        return np.zeros(0, dtype=np.uint64), offsets
    cut = np.flatnonzero((data == 0x20) | (data == 0x0A))
    starts = np.concatenate(([0], cut + 1))
    ends = np.concatenate((cut, [data.shape[0]]))
    doc = np.searchsorted(np.flatnonzero(data == 0x0A), starts, side="right")
    real = ends > starts  # an empty text leaves an empty "word" between two newlines
    starts, ends, doc = starts[real], ends[real], doc[real]
    # word hash: sum of T[byte] * B**i over its bytes, from one prefix sum mod 2**64 (B odd, so B**-i exists)
    pw = _powers(_BW, data.shape[0] + 1)
    pre = np.zeros(data.shape[0] + 1, dtype=np.uint64)
    np.cumsum(np.take(_BYTE_TABLE, data) * pw[:-1], out=pre[1:])
    words = (pre[ends] - pre[starts]) * _powers(pow(_BW, -1, 1 << 64), data.shape[0] + 1)[starts]
    words += (ends - starts).astype(np.uint64)
    _mix(words)
    del pre, pw
    m = words.shape[0] - ngram + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64), offsets
    sh = words[:m].copy()
    for j in range(1, ngram):
        sh *= _BN
        sh += words[j : j + m]
    _mix(sh)
    valid = doc[ngram - 1 :] == doc[:m]  # the n-gram stays inside one text
    sh, sdoc = sh[valid], doc[:m][valid]
    np.cumsum(np.bincount(sdoc, minlength=len(texts)), out=offsets[1:])
    return sh, offsets


class FastSignature(PipelineStep):
    """The signatures step with vectorized shingling and rensa signatures (module doc); writes datatrove's
    sorted bucket files, and with `shingles_folder` each document's sorted shingle set for verification."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash signatures (rensa)"

    def __init__(self, output_folder: str, config: MinhashConfig, shingles_folder: str | None = None) -> None:
        super().__init__()
        self.output_folder = get_datafolder(output_folder)
        self.shingles_folder = get_datafolder(shingles_folder) if shingles_folder else None
        self.config = config
        self.num_hashes = config.num_buckets * config.hashes_per_bucket

    def _record_dtype(self) -> np.dtype:
        r, fmt = self.config.hashes_per_bucket, self.config.hash_config.struct_format
        return np.dtype([(f"field{i + 1}", f"<{fmt}") for i in range(r)] + [(f"field{r + 1}", "<u4")])

    def _batches(self, data: Iterable[Document]) -> Iterator[tuple[list[int], list[str]]]:
        idx, texts, size = [], [], 0
        for i, doc in enumerate(data):
            self.stat_update("total")
            idx.append(i)
            texts.append(simplify(doc.text))
            size += len(texts[-1])
            if size >= BATCH_BYTES:
                yield idx, texts
                idx, texts, size = [], [], 0
        if idx:
            yield idx, texts

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        import rensa

        cfg = self.config
        r, nb = cfg.hashes_per_bucket, cfg.num_buckets
        dtype = self._record_dtype()
        hash_dtype = dtype[0]
        with self.track_time():
            files = [self.output_folder.open(f"bucket_{b:03d}/{rank:05d}.minhash.sig", mode="wb") for b in range(nb)]
            sets, set_lengths, set_docs = [], [], []
            for idx, texts in self._batches(data):
                flat, offsets = shingle_hashes(texts, cfg.n_grams)
                counts = np.diff(offsets).astype(np.int64)
                has = counts > 0  # no n-gram: no signature (never a near-duplicate), as datatrove
                if not has.any():
                    continue
                rows = np.asarray(rensa.RMinHash.digest_matrix_from_flat_token_hashes(
                    flat, np.concatenate(([0], np.cumsum(counts[has]))).astype(np.uint64), self.num_hashes,
                    cfg.seed).to_rows(), dtype=np.uint32)
                doc_idx = np.asarray(idx, dtype=np.uint32)[has]
                for b in range(nb):
                    rec = np.empty(rows.shape[0], dtype=dtype)
                    for j in range(r):
                        rec[f"field{j + 1}"] = rows[:, b * r + j].astype(hash_dtype)
                    rec[f"field{r + 1}"] = doc_idx
                    files[b].write(rec.tobytes())
                if self.shingles_folder is not None:  # each document's shingle set, sorted and unique
                    seg = np.repeat(np.arange(len(idx)), counts)
                    order = np.lexsort((flat, seg))
                    f, g = flat[order], seg[order]
                    first = np.ones(f.shape[0], dtype=bool)
                    first[1:] = (f[1:] != f[:-1]) | (g[1:] != g[:-1])
                    sets.append(f[first])
                    set_lengths.append(np.bincount(g[first], minlength=len(idx))[has])
                    set_docs.append(doc_idx)
                self.stat_update("signatures", value=int(has.sum()))
            for fh in files:
                fh.close()
            for b in range(nb):  # sorted per bucket, as datatrove's buckets job reads them
                name = f"bucket_{b:03d}/{rank:05d}.minhash.sig"
                with self.output_folder.open(name, mode="rb") as fh:
                    rec = np.frombuffer(fh.read(), dtype=dtype).copy()
                rec.sort(order=dtype.names)
                with self.output_folder.open(name, mode="wb") as fh:
                    fh.write(rec.tobytes())
            if self.shingles_folder is not None:
                z = [np.zeros(0, np.uint64)], [np.zeros(0, np.int64)], [np.zeros(0, np.uint32)]
                parts = {"shingles": np.concatenate(sets or z[0]), "lengths": np.concatenate(set_lengths or z[1]),
                         "docs": np.concatenate(set_docs or z[2])}
                for key, arr in parts.items():
                    with self.shingles_folder.open(f"{rank:05d}.{key}.npy", mode="wb") as fh:
                        np.save(fh, arr)
        return iter(())


class _ShingleSets:
    """The shingle sets one signatures task wrote, by document index."""

    def __init__(self, folder, rank: int) -> None:
        def load(key: str) -> np.ndarray:
            with folder.open(f"{rank:05d}.{key}.npy", mode="rb") as fh:
                return np.load(fh)

        self.flat, lengths, docs = load("shingles"), load("lengths"), load("docs")
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        self.where = {int(d): (int(a), int(a + n)) for d, a, n in zip(docs, starts, lengths)}

    def get(self, doc: int) -> np.ndarray:
        a, z = self.where[doc]
        return self.flat[a:z]


class VerifiedCluster(MinhashDedupCluster):
    """datatrove's clusters step, after dropping candidate pairs whose exact shingle Jaccard is below
    `threshold` (read from the signatures job's shingle sets; filtered `.dups` files go to `verified_folder`)."""

    name = "🎯 MinHash clusters (Jaccard-verified pairs)"

    def __init__(self, input_folder: str, output_folder: str, config: MinhashConfig, shingles_folder: str,
                 verified_folder: str, threshold: float) -> None:
        super().__init__(input_folder, output_folder, config=config, save_cluster_id=True)
        self.raw_folder = get_datafolder(input_folder)
        self.shingles = get_datafolder(shingles_folder)
        self.verified = get_datafolder(verified_folder)
        self.threshold = threshold

    def run(self, data=None, rank: int = 0, world_size: int = 1):  # noqa: ANN001, ANN201 (datatrove's signature)
        sets: dict[int, _ShingleSets] = {}
        jaccard: dict[tuple[int, int, int, int], bool] = {}  # a pair found in several bands is checked once
        kept = dropped = 0
        with self.track_time():
            for name in self.raw_folder.list_files(glob_pattern="*.dups"):
                with self.raw_folder.open(name, "rb") as fh:
                    pairs = np.frombuffer(fh.read(), dtype="<u4").reshape(-1, 4)
                keep = np.zeros(pairs.shape[0], dtype=bool)
                for i, (f1, d1, f2, d2) in enumerate(pairs.tolist()):
                    key = (f1, d1, f2, d2)
                    if key not in jaccard:
                        a = (sets.get(f1) or sets.setdefault(f1, _ShingleSets(self.shingles, f1))).get(d1)
                        b = (sets.get(f2) or sets.setdefault(f2, _ShingleSets(self.shingles, f2))).get(d2)
                        inter = np.intersect1d(a, b, assume_unique=True).shape[0]
                        jaccard[key] = inter >= self.threshold * (a.shape[0] + b.shape[0] - inter)
                    keep[i] = jaccard[key]
                with self.verified.open(name, "wb") as fh:
                    fh.write(pairs[keep].tobytes())
                kept += int(keep.sum())
                dropped += int((~keep).sum())
        self.stat_update("pairs_verified", value=kept)
        self.stat_update("pairs_below_jaccard", value=dropped)
        self.input_folder = self.verified
        return super().run(data, rank, world_size)


def _read_u32(folder, name: str) -> np.ndarray:
    if not folder.isfile(name):
        return np.zeros(0, dtype=np.uint32)
    with folder.open(name, "rb") as f:
        return np.frombuffer(f.read(), dtype="<u4")


class MinhashFilter(CurateStep):
    """Last MinHash step: keep one document per cluster, record the cluster id, account every drop.

    Reads the clusters job's `{rank:06d}.remove` (doc indexes to drop) and `{rank:06d}.clusters`
    ((doc index, cluster id) pairs) for this task; the document index is the position in this
    task's handed-off input, as in the signatures job.
    """

    name = "minhash filter"

    def __init__(self, clusters_folder: str, label: str | None = None) -> None:
        super().__init__(label)
        self.clusters_folder = clusters_folder

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        folder = get_datafolder(self.clusters_folder)
        remove = set(_read_u32(folder, f"{rank:06d}.remove").tolist())
        pairs = _read_u32(folder, f"{rank:06d}.clusters").reshape(-1, 2)
        cluster = dict(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist()))
        kept_in_cluster = 0
        for idx, doc in enumerate(data):
            doc.metadata[CLUSTER_ID] = cluster.get(idx)  # None (null): in no cluster
            if idx in remove:
                self.drop(doc, "near_duplicate")
                continue
            kept_in_cluster += idx in cluster
            yield doc
        self.stat_update("minhash_kept_cluster_members", value=kept_in_cluster)


def minhash_config(ngram: int, buckets: int, hashes_per_bucket: int, seed: int, precision: int) -> MinhashConfig:
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(n_grams=ngram, num_buckets=buckets, hashes_per_bucket=hashes_per_bucket, seed=seed,
                         hash_config=HashConfig(precision=precision))


__all__ = ["CLUSTER_ID", "FastSignature", "MinhashFilter", "VerifiedCluster", "WhitespaceSignature", "minhash_config",
           "shingle_hashes", "simplify"]
