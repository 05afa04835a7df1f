"""Benchmark: minhash_dedup (all four jobs, in-process) in docs/s on real text with planted near-duplicates.

Baseline in the same run: datasketch.MinHash signatures alone (same num_perm, same word 5-grams),
which is what most MinHash pipelines use, as a ratio. Also prints precision/recall per edit rate.

    python scripts/bench/minhash.py
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    from datasketch import MinHash
    from loguru import logger

    from curate.pipeline import run_stages
    from test_dedup_stages import near_dup_scores, planted_near_dups

    logger.remove()
    c4 = [json.loads(line) for line in gzip.open(REPO / "data" / "sample" / "c4-en-1k.jsonl.gz", "rt")]
    docs, pairs = planted_near_dups(c4, [0.05, 0.10, 0.15, 0.20], per_rate=100)
    docs = docs * 1  # ~1.4k docs
    n = len(docs)
    for cfg in [dict(ngram=5, buckets=14, hashes_per_bucket=8), dict(ngram=2, buckets=25, hashes_per_bucket=4)]:
        t0 = time.perf_counter()
        res = run_stages(docs, [{"stage": "minhash_dedup", **cfg}])
        dt = time.perf_counter() - t0
        p, r = near_dup_scores(docs, pairs, res)
        # baseline: datasketch signatures only (no LSH, no clustering), same shingles and num_perm
        num_perm = cfg["buckets"] * cfg["hashes_per_bucket"]
        t0 = time.perf_counter()
        for d in docs:
            w = d["text"].lower().split()
            m = MinHash(num_perm=num_perm, seed=1)
            m.update_batch([" ".join(w[i : i + cfg["ngram"]]).encode() for i in range(max(1, len(w) - cfg["ngram"] + 1))])
        base = time.perf_counter() - t0
        print(f"{cfg}: {n} docs in {dt:.1f} s = {n / dt:.0f} docs/s (whole stage, 4 jobs) | datasketch signatures "
              f"only {n / base:.0f} docs/s | ratio {base / dt:.2f} | precision {p:.3f} recall {r}")


if __name__ == "__main__":
    main()
