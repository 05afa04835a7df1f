"""Benchmark: exact_doc_dedup (all three jobs in-process: signatures -> finder -> filter) in docs/s and
MB/s, peak RSS, and the recall/precision of planted copies.

Corpus: the ESD benchmark's cached corpus (scripts/esd_corpus.py: real words, novel documents), with
10 % of the documents replaced by copies of earlier ones whose whitespace was changed (runs doubled,
a trailing newline), which the default `normalize: whitespace` must still match. Each size runs in a
fresh process; peak RSS is that process's (corpus included).

Baseline in the same process: the floor of any exact-document dedup, i.e. the same normalization
plus a 64-bit xxhash of every document in a Python loop, as a ratio.

    python scripts/bench/exact_doc.py [--sizes 25,100]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def one(mb: float) -> dict:
    import numpy as np
    import xxhash
    from datatrove.data import Document
    from esd import corpus, read_texts
    from loguru import logger

    from curate.dedup.normalize import text_whitespace
    from curate.pipeline import run_stages

    logger.remove()
    texts = read_texts(corpus(mb))
    rng = np.random.default_rng(0)
    planted = set()
    # in ascending order, so that no copied document is overwritten after being copied
    for i in np.sort(rng.choice(np.arange(1, len(texts)), len(texts) // 10, replace=False)).tolist():
        src = texts[int(rng.integers(i))]
        texts[i] = src.replace(" ", "  ", 3) + "\n"
        planted.add(str(i))
    docs = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
    del texts
    size = sum(len(d["text"].encode()) for d in docs) / 1e6
    t0 = time.perf_counter()
    res = run_stages(docs, [{"stage": "exact_doc_dedup"}])
    dt = time.perf_counter() - t0
    dropped = {d["id"] for d in docs} - {d.id for d in res.docs}
    t0 = time.perf_counter()
    for d in docs:
        xxhash.xxh64_intdigest(text_whitespace(Document(text=d["text"], id=d["id"])))
    base = time.perf_counter() - t0
    return {
        "mb": size,
        "docs": len(docs),
        "seconds": dt,
        "baseline_s": base,
        "planted": len(planted),
        "recall": len(dropped & planted) / len(planted),
        "precision": len(dropped & planted) / max(1, len(dropped)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25,100")
    ap.add_argument("--one", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one is not None:
        print(json.dumps(one(a.one)))
        return
    print(
        f"{'MB':>6} {'docs':>7} {'s':>6} {'docs/s':>7} {'MB/s':>6} {'hash-only docs/s':>16} {'ratio':>5} "
        f"{'peak RSS MiB':>12} {'recall':>6} {'precision':>9}"
    )
    for mb in a.sizes.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", mb], capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['mb']:6.1f} {r['docs']:7d} {r['seconds']:6.1f} {r['docs'] / r['seconds']:7.0f} {r['mb'] / r['seconds']:6.1f} "
            f"{r['docs'] / r['baseline_s']:16.0f} {r['baseline_s'] / r['seconds']:5.2f} {r['peak_rss_mib']:12.0f} "
            f"{r['recall']:6.3f} {r['precision']:9.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
