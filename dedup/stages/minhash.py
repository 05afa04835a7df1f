"""minhash_dedup: near-duplicate dedup across all tasks of a run, on datatrove's four MinHash steps.

Plan (`build_minhash`): the main flow stops at a barrier (documents handed off as Parquet); a
signatures job reads the handed-off documents with the same task count and writes per-bucket
signatures; a buckets job (one task per band) finds candidate pairs; a clusters job (one task)
unions them and assigns global cluster ids; the continuing job reads the same handed-off documents
and `MinhashFilter` drops every cluster member but one (reason `near_duplicate`) and records
`minhash_cluster_id` (null: no near-duplicate).

Signatures (`FastSignature`, `kernel: rensa`, the default): datatrove's text normalization
(`simplify_text`: lowercase, numbers to 0, punctuation to spaces, whitespace collapsed, diacritics
removed; re-implemented with the same result in shingles.py, its diacritics pass was a Python loop
per character), words split at spaces, word n-grams hashed per batch of documents in numpy
(`shingle_hashes`), and the signatures of all documents of the batch computed by `rensa` (Rust,
MinHash over the pre-hashed shingles) in one call. The bucket files are datatrove's
(`hashes_per_bucket` hashes + the document index per record, sorted), so the buckets and clusters
jobs are datatrove's own. Not bit-identical to datatrove's or datasketch's MinHash (other hash
functions), the same estimator of Jaccard similarity. `WhitespaceSignature` is datatrove's
signature step as before (`kernel: datatrove`, the benchmark's baseline): datatrove loads a spaCy
word tokenizer for English (not installed, downloads models), and after its normalization a
whitespace split gives the same words.

Optional verification (`verify_jaccard`): the signatures job also writes each document's sorted
shingle set, and the clusters job drops every candidate pair whose exact shingle Jaccard is below
`verify_jaccard` before clustering (LSH alone keeps every pair that collides in one band).
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, Literal

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
)
from datatrove.utils.word_tokenizers import WordTokenizer
from pydantic import Field, model_validator

from curate.core.stage_api import BuildContext, Column, CurateStep, StrictModel, register_stage

from ..shingles import shingle_hashes, simplify

CLUSTER_ID = "minhash_cluster_id"


class MinhashOptions(StrictModel):
    ngram: int = Field(5, ge=1, description="words per shingle")
    buckets: int = Field(14, ge=1, description="LSH bands (also the tasks of the buckets job)")
    hashes_per_bucket: int = Field(8, ge=1, description="rows per band; num_perm = buckets * hashes_per_bucket; "
                                   "similarity threshold ~ (1/buckets)^(1/hashes_per_bucket) (0.72 by default)")
    seed: int = Field(1, description="seed of the permutations (same on every task)")
    hash_precision: Literal[32, 64] = Field(
        64, description="bits per hash in the bucket files (the rensa kernel's hashes are 32-bit)")
    kernel: Literal["rensa", "datatrove"] = Field(
        "rensa", description="signatures: vectorized shingles + rensa (Rust), or datatrove's own step "
                             "(the previous kernel, ~4x slower)")
    verify_jaccard: float | None = Field(
        None, ge=0, le=1,
        description="drop candidate pairs whose exact shingle Jaccard is below this before clustering "
                    "(LSH alone keeps every pair that collides in one band); needs kernel: rensa")

    @model_validator(mode="after")
    def _verify_needs_rensa(self) -> "MinhashOptions":
        if self.verify_jaccard is not None and self.kernel != "rensa":
            raise ValueError("verify_jaccard reads the shingle sets the rensa kernel writes: use kernel: rensa")
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


BATCH_BYTES = 2 * 2**20  # text per numpy/rensa batch


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
    `min_jaccard` (read from the signatures job's shingle sets; filtered `.dups` files go to `verified_folder`)."""

    name = "🎯 MinHash clusters (Jaccard-verified pairs)"

    def __init__(self, input_folder: str, output_folder: str, config: MinhashConfig, shingles_folder: str,
                 verified_folder: str, min_jaccard: float) -> None:
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


def minhash_config(ngram: int, buckets: int, hashes_per_bucket: int, seed: int, precision: int) -> MinhashConfig:
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(n_grams=ngram, num_buckets=buckets, hashes_per_bucket=hashes_per_bucket, seed=seed,
                         hash_config=HashConfig(precision=precision))


@register_stage(
    "minhash_dedup", MinhashOptions,
    "drop near-duplicate documents across the whole run (MinHash LSH, keeps one per cluster)",
    columns=[Column(CLUSTER_ID, pa.int64(), "MinHash cluster id (null: no near-duplicate found)")],
    group="dedup",
)
def build_minhash(opts: MinhashOptions, ctx: BuildContext) -> None:
    label = ctx.stage_label
    cfg = minhash_config(opts.ngram, opts.buckets, opts.hashes_per_bucket, opts.seed, opts.hash_precision)
    docs = ctx.barrier(label)
    tasks = ctx.tasks
    sigs, buckets, clusters = (ctx.work_path(label, x) for x in ("signatures", "buckets", "clusters"))
    shingles = ctx.work_path(label, "shingles") if opts.verify_jaccard is not None else None
    signer = (FastSignature(sigs, cfg, shingles) if opts.kernel == "rensa" else WhitespaceSignature(sigs, cfg))
    ctx.add_job(f"{label}_signatures", [ctx.handoff_reader(docs), signer], tasks=tasks)
    ctx.add_job(f"{label}_buckets", [MinhashDedupBuckets(sigs, buckets, config=cfg)], tasks=opts.buckets)
    cluster: PipelineStep
    if shingles is not None and opts.verify_jaccard is not None:
        verified = ctx.work_path(label, "verified")
        cluster = VerifiedCluster(buckets, clusters, cfg, shingles, verified, opts.verify_jaccard)
    else:
        cluster = MinhashDedupCluster(buckets, clusters, config=cfg, save_cluster_id=True)
    ctx.add_job(f"{label}_clusters", [cluster], tasks=1)
    ctx.add(MinhashFilter(clusters))
