"""minhash_dedup: near-duplicate dedup across all tasks of a run, on datatrove's four MinHash steps.

Plan (`build_minhash`): the main flow stops at a barrier (documents handed off as Parquet); a
signatures job reads the handed-off texts with the same task count and writes per-bucket
signatures; a buckets job (one task per band) finds candidate pairs; a clusters job (one task)
unions them and assigns global cluster ids; the continuing job reads the same handed-off documents
and `MinhashFilter` drops every cluster member but one (reason `near_duplicate`) and records
`minhash_cluster_id` (null: no near-duplicate).

Signatures (`FastSignature`, `kernel: rensa`, the default): reads only the text column of this task's
share of the handoff (the same files in the same order as the filter job's reader, so a document's
index is the same in both jobs), normalizes the texts of a batch at once as datatrove does
(`simplify_text`: lowercase, numbers to 0, punctuation to spaces, whitespace collapsed, diacritics
removed; re-implemented in numpy in shingles.py with the same output), splits words at spaces, hashes
the word n-grams in numpy (`shingle_hashes_joined`), and computes the signatures of all documents of the
batch with `rensa` (Rust, MinHash over the pre-hashed shingles) in one call. The bucket files are
datatrove's (`hashes_per_bucket` hashes + the document index per record, sorted). Not bit-identical to
datatrove's or datasketch's MinHash (other hash functions), the same estimator of Jaccard similarity.
`WhitespaceSignature` is datatrove's signature step as before (`kernel: datatrove`, the benchmark's
baseline): datatrove loads a spaCy word tokenizer for English (not installed, downloads models), and
after its normalization a whitespace split gives the same words.

Candidate pairs (`FastBuckets`): datatrove's buckets step in numpy for a band that fits in memory (one
sort of the band's signatures from all tasks instead of a heap merge in Python), the same `.dups` files in
the same order; datatrove's own merge for larger bands. Clusters: datatrove's step.

Optional verification (`verify_jaccard`): the signatures job also writes each document's shingles, and
the clusters job drops every candidate pair whose exact shingle Jaccard (of the two documents' sets) is
below `verify_jaccard` before clustering (LSH alone keeps every pair that collides in one band).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
import pyarrow as pa
from datatrove.data import Document
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupSignature,
    _mersenne_prime,
)
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.utils.word_tokenizers import WordTokenizer
from pydantic import Field, model_validator

from curate.core.stage_api import BuildContext, Column, CurateStep, StrictModel, register_stage

from ..shingles import shingle_hashes_joined, simplify_arrow

CLUSTER_ID = "minhash_cluster_id"


class MinhashOptions(StrictModel):
    ngram: int = Field(5, ge=1, description="words per shingle")
    buckets: int = Field(14, ge=1, description="LSH bands (also the tasks of the buckets job)")
    hashes_per_bucket: int = Field(
        8,
        ge=1,
        description="rows per band; num_perm = buckets * hashes_per_bucket; "
        "similarity threshold ~ (1/buckets)^(1/hashes_per_bucket) (0.72 by default)",
    )
    seed: int = Field(1, description="seed of the permutations (same on every task)")
    hash_precision: Literal[32, 64] = Field(
        64, description="bits per hash in the bucket files (the rensa kernel's hashes are 32-bit)"
    )
    kernel: Literal["rensa", "datatrove"] = Field(
        "rensa",
        description="signatures: vectorized shingles + rensa (Rust), or datatrove's own step "
        "(the previous kernel, ~4x slower)",
    )
    verify_jaccard: float | None = Field(
        None,
        ge=0,
        le=1,
        description="drop candidate pairs whose exact shingle Jaccard is below this before clustering "
        "(LSH alone keeps every pair that collides in one band); needs kernel: rensa",
    )

    @model_validator(mode="after")
    def _verify_needs_rensa(self) -> MinhashOptions:
        if self.verify_jaccard is not None and self.kernel != "rensa":
            raise ValueError("verify_jaccard reads the shingles the rensa kernel writes: use kernel: rensa")
        return self

    @property
    def threshold(self) -> float:
        """The LSH similarity threshold the bands and rows give: ~ (1/buckets)^(1/hashes_per_bucket)."""
        return (1 / self.buckets) ** (1 / self.hashes_per_bucket)


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


BATCH_BYTES = 2**20  # text per numpy/rensa batch
BAND_BYTES = 2**30  # a band's signature files up to this size are bucketed in numpy, larger ones by datatrove


def lex_order(keys: list[np.ndarray]) -> np.ndarray:
    """np.lexsort's (stable) order by keys[0], then keys[1], ... (primary key first), with two unsigned keys
    below 2**32 packed into one 64-bit key (rensa's hashes are 32-bit): half the passes of the sort."""
    packed: list[np.ndarray] = []
    i = 0
    while i < len(keys):
        a = keys[i]
        if (
            i + 1 < len(keys)
            and a.dtype.kind == "u"
            and keys[i + 1].dtype.kind == "u"
            and (a.shape[0] == 0 or (int(a.max()) < 2**32 and int(keys[i + 1].max()) < 2**32))
        ):
            packed.append((a.astype(np.uint64) << np.uint64(32)) | keys[i + 1].astype(np.uint64))
            i += 2
        else:
            packed.append(a)
            i += 1
    return np.lexsort(packed[::-1])


class FastSignature(PipelineStep):
    """The signatures step with vectorized normalization and shingling and rensa signatures (module doc):
    reads the texts of its share of the handoff, writes datatrove's sorted bucket files, and with
    `shingles_folder` each document's shingles for verification."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash signatures (rensa)"

    def __init__(
        self, handoff: BaseDiskReader, output_folder: str, config: MinhashConfig, shingles_folder: str | None = None
    ) -> None:
        super().__init__()
        self.handoff = handoff  # the filter job's reader: its file shard is this step's documents, in order
        self.output_folder = get_datafolder(output_folder)
        self.shingles_folder = get_datafolder(shingles_folder) if shingles_folder else None
        self.config = config
        self.num_hashes = config.num_buckets * config.hashes_per_bucket

    def _record_dtype(self) -> np.dtype:
        r, fmt = self.config.hashes_per_bucket, self.config.hash_config.struct_format
        return np.dtype([(f"field{i + 1}", f"<{fmt}") for i in range(r)] + [(f"field{r + 1}", "<u4")])

    def _batches(self, rank: int, world_size: int) -> Iterator[pa.Array]:
        """The texts of this task's documents (an Arrow string array: no Python strings), in the order the
        handoff reader yields them (every row is a document: the reader keeps empty texts), in batches of
        about BATCH_BYTES."""
        import pyarrow.parquet as pq

        r = self.handoff
        assert not (r.paths_file or r.shuffle_files or r.skip or r.limit != -1), "handoff reader options changed"
        files = r.data_folder.get_shard(rank, world_size, recursive=r.recursive, glob_pattern=r.glob_pattern)
        chunks: list[pa.Array] = []
        size = 0
        for name in files or ():
            with r.data_folder.open(name, "rb") as fh, pq.ParquetFile(fh) as pf:
                for batch in pf.iter_batches(batch_size=256, columns=[r.text_key]):
                    chunks.append(batch.column(0))
                    size += chunks[-1].nbytes
                    if size >= BATCH_BYTES:
                        yield pa.concat_arrays(chunks)
                        chunks, size = [], 0
        if chunks:
            yield pa.concat_arrays(chunks)

    def run(self, data: Iterable[Document] | None = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        import rensa

        assert data is None, "the signatures step reads the handoff itself"
        cfg = self.config
        r, nb = cfg.hashes_per_bucket, cfg.num_buckets
        dtype = self._record_dtype()
        names = list(dtype.names or ())
        hash_dtype = dtype[0]
        with self.track_time():
            files = [self.output_folder.open(f"bucket_{b:03d}/{rank:05d}.minhash.sig", mode="wb") for b in range(nb)]
            sets, set_lengths, set_docs = [], [], []
            first = 0  # index of the batch's first document in this task's input
            for texts in self._batches(rank, world_size):
                idx = np.arange(first, first + len(texts), dtype=np.uint32)
                first += len(texts)
                self.stat_update("total", value=len(texts))
                flat, offsets = shingle_hashes_joined(simplify_arrow(texts), len(texts), cfg.n_grams)
                counts = np.diff(offsets).astype(np.int64)
                has = counts > 0  # no n-gram: no signature (never a near-duplicate), as datatrove
                if not has.any():
                    continue
                rows = np.asarray(
                    rensa.RMinHash.digest_matrix_from_flat_token_hashes(
                        flat, np.concatenate(([0], np.cumsum(counts[has]))).astype(np.uint64), self.num_hashes, cfg.seed
                    ).to_rows(),
                    dtype=np.uint32,
                )
                doc_idx = idx[has]
                for b in range(nb):
                    rec = np.empty(rows.shape[0], dtype=dtype)
                    for j in range(r):
                        rec[f"field{j + 1}"] = rows[:, b * r + j].astype(hash_dtype)
                    rec[f"field{r + 1}"] = doc_idx
                    files[b].write(rec.tobytes())
                if self.shingles_folder is not None:
                    # each document's shingles as they come: the clusters job makes sets of the few it compares
                    sets.append(flat)
                    set_lengths.append(counts[has])
                    set_docs.append(doc_idx)
                self.stat_update("signatures", value=int(has.sum()))
            for fh in files:
                fh.close()
            for b in range(nb):  # sorted per bucket, as datatrove's buckets job reads them
                name = f"bucket_{b:03d}/{rank:05d}.minhash.sig"
                with self.output_folder.open(name, mode="rb") as fh:
                    rec = np.frombuffer(fh.read(), dtype=dtype)
                with self.output_folder.open(name, mode="wb") as fh:
                    fh.write(rec[lex_order([rec[k] for k in names])].tobytes())
            if self.shingles_folder is not None:
                z = [np.zeros(0, np.uint64)], [np.zeros(0, np.int64)], [np.zeros(0, np.uint32)]
                parts = {
                    "shingles": np.concatenate(sets or z[0]),
                    "lengths": np.concatenate(set_lengths or z[1]),
                    "docs": np.concatenate(set_docs or z[2]),
                }
                for key, arr in parts.items():
                    with self.shingles_folder.open(f"{rank:05d}.{key}.npy", mode="wb") as fh:
                        np.save(fh, arr)
        return iter(())


class FastBuckets(MinhashDedupBuckets):
    """datatrove's buckets step (candidate pairs: documents whose signatures are equal in one band), with the
    merge of a band's sorted signature files done by one stable numpy sort when the band fits in BAND_BYTES:
    the same pairs in the same order in the same `.dups` file. Otherwise (a band too large, several workers
    per band, an index) datatrove's heap merge in Python."""

    name = "🎯 MinHash buckets (numpy)"

    def run(self, data: Iterable[Document] | None = None, rank: int = 0, world_size: int = 1):  # noqa: ANN201
        cfg = self.config
        if world_size != cfg.num_buckets or self.index_folder is not None:
            return super().run(data, rank, world_size)
        files = self.input_folder.list_files(subdirectory=f"bucket_{rank:03d}")
        if sum(self.input_folder.size(f) for f in files) > BAND_BYTES:
            return super().run(data, rank, world_size)
        with self.track_time():
            self._band(rank, files)
        return iter(())

    def _band(self, bucket: int, files: list[str]) -> None:
        cfg = self.config
        r = cfg.hashes_per_bucket
        fmt = cfg.hash_config.struct_format
        dtype = np.dtype([(f"h{i}", f"<{fmt}") for i in range(r)] + [("doc", "<u4")])
        # datatrove reads a file up to its first signature whose first hash is >= this (none for 64-bit hashes
        # below the Mersenne prime; for 32-bit ones, 2**32 - 1)
        hash_max = int(_mersenne_prime) if cfg.hash_config.precision == 64 else int(cfg.hash_config.max)
        recs, stems = [], []
        for name in files:
            with self.input_folder.open(name, "rb") as fh:
                rec = np.frombuffer(fh.read(), dtype=dtype)
            rec = rec[: int(np.searchsorted(rec["h0"], hash_max, side="left"))]
            recs.append(rec)
            stems.append(
                np.full(rec.shape[0], int(posixpath.basename(name).removesuffix(".minhash.sig")), dtype=np.uint32)
            )
        rec = np.concatenate(recs) if recs else np.zeros(0, dtype=dtype)
        stem = np.concatenate(stems) if stems else np.zeros(0, dtype=np.uint32)
        # datatrove pops signatures in (signature, file, document) order: files are concatenated in its file
        # order and each is sorted by (signature, document), so a stable sort by the signature alone keeps that
        order = lex_order([rec[f"h{i}"] for i in range(r)])
        rec, stem = rec[order], stem[order]
        same = np.ones(max(rec.shape[0] - 1, 0), dtype=bool)
        for i in range(r):
            h = rec[f"h{i}"]
            same &= h[1:] == h[:-1]
        k = np.flatnonzero(same)  # each signature equal to the one before it: the pair (before, it)
        pairs = np.empty((k.shape[0], 4), dtype="<u4")
        pairs[:, 0], pairs[:, 1] = stem[k], rec["doc"][k]
        pairs[:, 2], pairs[:, 3] = stem[k + 1], rec["doc"][k + 1]
        with self.output_folder.open(f"{bucket:05d}_00.dups", mode="wb") as out:
            out.write(pairs.tobytes())
        if k.shape[0]:
            self.stat_update("total_matches", value=int(k.shape[0]))


class _ShingleSets:
    """The shingles one signatures task wrote, by document index; `get` gives a document's set (sorted)."""

    def __init__(self, folder, rank: int) -> None:
        def load(key: str) -> np.ndarray:
            with folder.open(f"{rank:05d}.{key}.npy", mode="rb") as fh:
                return np.load(fh)

        self.flat, lengths, docs = load("shingles"), load("lengths"), load("docs")
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        self.where = {int(d): (int(a), int(a + n)) for d, a, n in zip(docs, starts, lengths)}
        self.sets: dict[int, np.ndarray] = {}

    def get(self, doc: int) -> np.ndarray:
        s = self.sets.get(doc)
        if s is None:
            a, z = self.where[doc]
            s = self.sets[doc] = np.unique(self.flat[a:z])
        return s


class VerifiedCluster(MinhashDedupCluster):
    """datatrove's clusters step, after dropping candidate pairs whose exact shingle Jaccard is below
    `min_jaccard` (made from the shingles the signatures job wrote; filtered `.dups` files go to `verified_folder`)."""

    name = "🎯 MinHash clusters (Jaccard-verified pairs)"

    def __init__(
        self,
        input_folder: str,
        output_folder: str,
        config: MinhashConfig,
        shingles_folder: str,
        verified_folder: str,
        min_jaccard: float,
    ) -> None:
        super().__init__(input_folder, output_folder, config=config, save_cluster_id=True)
        self.raw_folder = get_datafolder(input_folder)
        self.shingles = get_datafolder(shingles_folder)
        self.verified = get_datafolder(verified_folder)
        self.min_jaccard = min_jaccard  # not MinhashOptions.threshold, the LSH bands' similarity threshold

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
                        jaccard[key] = inter >= self.min_jaccard * (a.shape[0] + b.shape[0] - inter)
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


def minhash_config(
    ngram: int,
    buckets: int,
    hashes_per_bucket: int,
    seed: int,
    precision: int,
    hash_fc: Literal["xxhash", "sha1"] = "xxhash",
) -> MinhashConfig:
    """datatrove's config. Only its signature step (`kernel: datatrove`) hashes with `hash_fc`; the buckets and
    clusters steps read the precision only, so the rensa kernel names sha1, which spares HashConfig's check
    that xxhash is installed (a scan of every installed distribution's metadata, ~0.1-0.3 s per process)."""
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(
        n_grams=ngram,
        num_buckets=buckets,
        hashes_per_bucket=hashes_per_bucket,
        seed=seed,
        hash_config=HashConfig(precision=precision, hash_fc=hash_fc),
    )


@register_stage(
    "minhash_dedup",
    MinhashOptions,
    "drop near-duplicate documents across the whole run (MinHash LSH, keeps one per cluster)",
    columns=[Column(CLUSTER_ID, pa.int64(), "MinHash cluster id (null: no near-duplicate found)")],
)
def build_minhash(opts: MinhashOptions, ctx: BuildContext) -> None:
    label = ctx.stage_label
    rensa_kernel = opts.kernel == "rensa"
    cfg = minhash_config(
        opts.ngram,
        opts.buckets,
        opts.hashes_per_bucket,
        opts.seed,
        opts.hash_precision,
        "sha1" if rensa_kernel else "xxhash",
    )
    docs = ctx.barrier(label)
    tasks = ctx.tasks
    sigs, buckets, clusters = (ctx.work_path(label, x) for x in ("signatures", "buckets", "clusters"))
    shingles = ctx.work_path(label, "shingles") if opts.verify_jaccard is not None else None
    reader = ctx.handoff_reader(docs)
    sig_out = [sigs] if shingles is None else [sigs, shingles]
    if rensa_kernel:
        if not isinstance(reader, BaseDiskReader):
            raise TypeError(f"the signatures step reads the handoff's files itself; got a {type(reader).__name__}")
        ctx.add_job(f"{label}_signatures", [FastSignature(reader, sigs, cfg, shingles)], tasks=tasks, writes=sig_out)
        bucketer: PipelineStep = FastBuckets(sigs, buckets, config=cfg)
    else:
        ctx.add_job(f"{label}_signatures", [reader, WhitespaceSignature(sigs, cfg)], tasks=tasks, writes=sig_out)
        bucketer = MinhashDedupBuckets(sigs, buckets, config=cfg)
    ctx.add_job(f"{label}_buckets", [bucketer], tasks=opts.buckets, writes=[buckets])
    cluster: PipelineStep
    verified: str | None = None
    if shingles is not None and opts.verify_jaccard is not None:
        verified = ctx.work_path(label, "verified")
        cluster = VerifiedCluster(buckets, clusters, cfg, shingles, verified, opts.verify_jaccard)
    else:
        cluster = MinhashDedupCluster(buckets, clusters, config=cfg, save_cluster_id=True)
    ctx.add_job(f"{label}_clusters", [cluster], tasks=1, writes=[p for p in (clusters, verified) if p])
    ctx.add(MinhashFilter(clusters))
