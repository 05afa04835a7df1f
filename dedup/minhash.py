"""MinHash near-duplicate dedup across all tasks of a run, on datatrove's four MinHash steps.

Plan (built by `stages.build_minhash`): the main flow stops at a barrier (documents handed off as
Parquet); a signatures job reads the handed-off documents with the same task count and writes
per-bucket signatures; a buckets job (one task per band) finds candidate pairs; a clusters job
(one task) unions them and assigns global cluster ids; the continuing job reads the same
handed-off documents and `MinhashFilter` drops every cluster member but one (reason
`near_duplicate`) and records `minhash_cluster_id` (-1: no near-duplicate).

MinHash itself is datatrove's (`(a*h+b) mod 2^61-1` permutations over xxhash-64 of word n-grams
of normalized text, banded LSH with `buckets` bands of `hashes_per_bucket` rows): the same
estimator as `datasketch.MinHash`, vectorized in numpy, and it stores signatures on disk sorted
per band so buckets scale past memory. Not bit-identical to datasketch. The only change: datatrove
loads a spaCy word tokenizer for English (not installed, downloads models); after datatrove's
normalization (lowercase, punctuation removed, whitespace collapsed) whitespace split gives the
same words, so `WhitespaceSignature` uses that.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
from datatrove.data import Document
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.hashing import create_hash_func

from curate.pipeline.steps import CurateStep

CLUSTER_ID = "minhash_cluster_id"


class _WhitespaceWords:
    def word_tokenize(self, text: str) -> list[str]:
        return text.split()


class WhitespaceSignature(MinhashDedupSignature):
    """datatrove's signature step with a whitespace word splitter instead of spaCy."""

    def __init__(self, output_folder: str, config: MinhashConfig) -> None:
        PipelineStep.__init__(self)
        self.output_folder = get_datafolder(output_folder)
        self.config = config
        self.num_hashes = config.num_buckets * config.hashes_per_bucket
        self._parameters = None
        self._hash_func = create_hash_func(config.hash_config)
        self.language = "en"
        self.word_tokenizer = _WhitespaceWords()
        self.skip_existing_sigs = False


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
            doc.metadata[CLUSTER_ID] = cluster.get(idx, -1)
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


__all__ = ["CLUSTER_ID", "MinhashFilter", "WhitespaceSignature", "minhash_config"]
