"""Registers the dedup stages: exact_substring_dedup, minhash_dedup, exact_doc_dedup."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from datatrove.pipeline.dedup.exact_dedup import ExactDedupSignature, ExactFindDedups
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster
from pydantic import Field, model_validator

from curate.core.options import LocalPath, StrictModel
from curate.core.stage_api import BuildContext, Column, register_prepare, register_stage

from .exact_doc import NORMALIZERS, ExactDocFilter, exact_config
from .exact_substring import REMOVED_CHARS, REMOVED_SPANS, ExactSubstringDedup, estimate_for_shard
from .minhash import CLUSTER_ID, FastSignature, MinhashFilter, VerifiedCluster, WhitespaceSignature, minhash_config


# ------------------------------------------------------------------------------ exact substring
class ExactSubstringOptions(StrictModel):
    units: Literal["tokens", "bytes"] = Field("tokens", description="compare GPT-2 tokens (GneissWeb) or UTF-8 bytes")
    min_length: int = Field(50, ge=1, description="shortest repeated span removed, in `units` (GneissWeb: 50 tokens)")
    keep: Literal["first", "none"] = Field("first", description="keep the first copy in text order (GneissWeb) or remove every copy (Lee et al.)")
    shard_bytes: int = Field(200_000_000, ge=1, description="UTF-8 bytes of text per shard; repeats are found within a shard (GneissWeb: ~200 MB files)")
    shard_tokens: int | None = Field(None, ge=1, description="tokens per shard instead of shard_bytes (tokens mode; documents are tokenized as they arrive)")
    drop_empty: bool = Field(False, description="drop documents left with only whitespace (reason esd_emptied); they are kept and counted otherwise")
    tokenizer: LocalPath | None = Field(None, description="folder with vocab.json + merges.txt (tiktoken) or a byte-level BPE tokenizer.json; default: bundled GPT-2")
    threads: int = Field(2, ge=1, description="tokenizer threads")
    max_memory_gb: float = Field(8.0, gt=0, description="refuse (clear error) a shard whose estimated peak RAM is above this")

    @model_validator(mode="after")
    def _fits(self) -> "ExactSubstringOptions":
        if self.shard_tokens is not None and self.units != "tokens":
            raise ValueError("shard_tokens counts GPT-2 tokens: use it with units: tokens, or shard_bytes in bytes mode")
        need = estimate_for_shard(self.shard_bytes, self.units, self.shard_tokens) / 2**30
        size = f"shard_tokens={self.shard_tokens}" if self.shard_tokens else f"shard_bytes={self.shard_bytes}"
        if need > self.max_memory_gb:
            raise ValueError(f"{size} needs about {need:.1f} GiB in {self.units} mode, over "
                             f"max_memory_gb={self.max_memory_gb}; lower {size.split('=')[0]} or raise max_memory_gb")
        return self


@register_stage(
    "exact_substring_dedup", ExactSubstringOptions,
    "cut every span of >= min_length tokens/bytes that repeats within a shard (suffix array, GneissWeb)",
    columns=[Column(REMOVED_SPANS, pa.int64(), "spans cut out of this document by exact-substring dedup"),
             Column(REMOVED_CHARS, pa.int64(), "characters cut out of this document by exact-substring dedup")],
    group="dedup",
)
def build_exact_substring(opts: ExactSubstringOptions, ctx: BuildContext) -> None:
    ctx.add(ExactSubstringDedup(**opts.model_dump()))


# ------------------------------------------------------------------------------ minhash
class MinhashOptions(StrictModel):
    ngram: int = Field(5, ge=1, description="words per shingle")
    buckets: int = Field(14, ge=1, description="LSH bands (also the tasks of the buckets job)")
    hashes_per_bucket: int = Field(8, ge=1, description="rows per band; num_perm = buckets * hashes_per_bucket; "
                                   "similarity threshold ~ (1/buckets)^(1/hashes_per_bucket) (0.72 by default)")
    seed: int = Field(1, description="seed of the permutations (same on every task)")
    hash_precision: Literal[32, 64] = Field(64, description="bits per hash in the bucket files (the rensa kernel's hashes are 32-bit)")
    kernel: Literal["rensa", "datatrove"] = Field("rensa", description="signatures: vectorized shingles + rensa (Rust), or datatrove's own step (the previous kernel, ~4x slower)")
    verify_jaccard: float | None = Field(None, ge=0, le=1, description="drop candidate pairs whose exact shingle Jaccard is below this before clustering (LSH alone keeps every pair that collides in one band); needs kernel: rensa")

    @model_validator(mode="after")
    def _verify_needs_rensa(self) -> "MinhashOptions":
        if self.verify_jaccard is not None and self.kernel != "rensa":
            raise ValueError("verify_jaccard reads the shingle sets the rensa kernel writes: use kernel: rensa")
        return self

    @property
    def threshold(self) -> float:
        return (1 / self.buckets) ** (1 / self.hashes_per_bucket)


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
    verify = opts.verify_jaccard is not None
    shingles = ctx.work_path(label, "shingles") if verify else None
    signer = (FastSignature(sigs, cfg, shingles) if opts.kernel == "rensa" else WhitespaceSignature(sigs, cfg))
    ctx.add_job(f"{label}_signatures", [ctx.handoff_reader(docs), signer], tasks=tasks)
    ctx.add_job(f"{label}_buckets", [MinhashDedupBuckets(sigs, buckets, config=cfg)], tasks=opts.buckets)
    cluster = (VerifiedCluster(buckets, clusters, cfg, shingles, ctx.work_path(label, "verified"), opts.verify_jaccard)
               if verify else MinhashDedupCluster(buckets, clusters, config=cfg, save_cluster_id=True))
    ctx.add_job(f"{label}_clusters", [cluster], tasks=1)
    ctx.add(MinhashFilter(clusters))


# ------------------------------------------------------------------------------ exact document
class ExactDocOptions(StrictModel):
    normalize: Literal[tuple(NORMALIZERS)] = Field(  # type: ignore[valid-type]
        "whitespace", description="text compared: none (as is) | whitespace (NFC, whitespace runs collapsed, stripped) | whitespace_lower")


@register_stage(
    "exact_doc_dedup", ExactDocOptions,
    "drop documents whose normalized text equals an earlier one's, across the whole run (hash)",
    group="dedup",
)
def build_exact_doc(opts: ExactDocOptions, ctx: BuildContext) -> None:
    label = ctx.stage_label
    cfg = exact_config(opts.normalize)
    docs = ctx.barrier(label)
    sigs, dups = ctx.work_path(label, "signatures"), ctx.work_path(label, "dups")
    ctx.add_job(f"{label}_signatures", [ctx.handoff_reader(docs), ExactDedupSignature(sigs, cfg, finder_workers=1)], tasks=ctx.tasks)
    ctx.add_job(f"{label}_find", [ExactFindDedups(sigs, dups, cfg)], tasks=1)
    ctx.add(ExactDocFilter(dups, opts.normalize))


@register_prepare("exact_substring_dedup")
def prepare_exact_substring(opts: ExactSubstringOptions, pf: Any) -> None:
    """A configured tokenizer folder holds vocab.json + merges.txt or a tokenizer.json (byte-level BPE)."""
    if opts.tokenizer is None:
        return
    p = Path(opts.tokenizer)
    ok = (p.is_file() and p.suffix == ".json") or (p.is_dir() and (
        (p / "tokenizer.json").is_file() or ((p / "vocab.json").is_file() and (p / "merges.txt").is_file())))
    if not ok:
        pf.problem(f"{opts.tokenizer!r} is neither a folder with vocab.json + merges.txt (or tokenizer.json) "
                   "nor a tokenizer.json file", f"{pf.key}.tokenizer")
