"""Benchmark: minhash_dedup (all four jobs, in-process) in docs/s and MB/s on real text with planted
near-duplicates, plus peak RSS.

Corpus: the sample's C4 documents of >= 150 words, 100 copies of them per edit rate (5/10/15/20 % of
words replaced), and `--filler-mb` of novel documents from scripts/esd_corpus.py (real words, no
near-duplicates among them) so the run is not dominated by job start-up. Each configuration runs in a
fresh process; peak RSS is that process's (corpus included).

Baseline in the same process: datasketch.MinHash signatures alone (same num_perm, same word n-grams,
no LSH, no clustering), which is what most MinHash pipelines use, as a ratio. Precision counts every
dropped document that is not part of a planted pair (filler included) as a false positive.

`--baseline` (default on; `--no-baseline` to skip): each configuration again with the old signature
kernel this stage replaced (`kernel: datatrove`, datatrove's own MinhashDedupSignature step, see
dedup/stages/minhash.py `WhitespaceSignature`), in the same run and on the same corpus, printed as "ratio
new/old" (the whole stage's time with `kernel: datatrove` over its time with the default kernel) with
both kernels' precision and recall.

    python scripts/bench/minhash.py [--filler-mb 20] [--no-baseline]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))

CONFIGS = [dict(ngram=5, buckets=14, hashes_per_bucket=8), dict(ngram=2, buckets=25, hashes_per_bucket=4)]


def one(cfg: dict, filler_mb: float) -> dict:
    from curate_testing.corpora import near_dup_scores, planted_near_dups
    from datasketch import MinHash
    from esd_corpus import generate
    from loguru import logger

    from curate.pipeline import run_stages

    logger.remove()
    c4 = [json.loads(line) for line in gzip.open(REPO / "data" / "sample" / "c4-en-1k.jsonl.gz", "rt")]
    docs, pairs = planted_near_dups(c4, [0.05, 0.10, 0.15, 0.20], per_rate=100)
    filler, _ = generate(filler_mb, seed=1, plant_rate=0) if filler_mb > 0 else ([], [])
    docs += [{"id": f"f{i}", "text": t} for i, t in enumerate(filler)]
    del filler
    mb = sum(len(d["text"].encode()) for d in docs) / 1e6
    t0 = time.perf_counter()
    res = run_stages(docs, [{"stage": "minhash_dedup", **cfg}])
    dt = time.perf_counter() - t0
    p, r = near_dup_scores(docs, pairs, res)
    num_perm = cfg["buckets"] * cfg["hashes_per_bucket"]
    t0 = time.perf_counter()
    for d in docs:
        w = d["text"].lower().split()
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([" ".join(w[i : i + cfg["ngram"]]).encode() for i in range(max(1, len(w) - cfg["ngram"] + 1))])
    base = time.perf_counter() - t0
    return {"cfg": cfg, "docs": len(docs), "mb": mb, "seconds": dt, "baseline_s": base, "precision": p,
            "recall": r, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--filler-mb", type=float, default=20.0, help="MB of novel filler documents")
    ap.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                    help="also run each config with the old kernel (kernel: datatrove) and print ratio new/old")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--kernel", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one is not None:
        cfg = dict(CONFIGS[a.one], **({"kernel": a.kernel} if a.kernel else {}))
        print(json.dumps(one(cfg, a.filler_mb)))
        return
    new_runs = []
    print(f"{'config':32} {'docs':>6} {'MB':>5} {'s':>6} {'docs/s':>7} {'MB/s':>5} {'datasketch docs/s':>17} "
          f"{'ratio':>5} {'peak RSS MiB':>12} {'precision':>9}  recall by edit rate")
    for i, cfg in enumerate(CONFIGS):
        out = subprocess.run([sys.executable, __file__, "--one", str(i), "--filler-mb", str(a.filler_mb)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        new_runs.append(r)
        name = f"{cfg['ngram']}-gram {cfg['buckets']}x{cfg['hashes_per_bucket']}"
        print(f"{name:32} {r['docs']:6d} {r['mb']:5.1f} {r['seconds']:6.1f} {r['docs'] / r['seconds']:7.0f} "
              f"{r['mb'] / r['seconds']:5.2f} {r['docs'] / r['baseline_s']:17.0f} {r['baseline_s'] / r['seconds']:5.2f} "
              f"{r['peak_rss_mib']:12.0f} {r['precision']:9.3f}  {r['recall']}", flush=True)
    if not a.baseline:
        return
    from curate.dedup.stages.minhash import MinhashOptions

    default_kernel = MinhashOptions.model_fields["kernel"].default
    print(f"\nbaseline, same run: the old signature kernel (kernel: datatrove) against the default (kernel: {default_kernel})")
    print(f"{'config':32} {'old s':>6} {'old docs/s':>10} {'old MB/s':>8} {'new s':>6} {'ratio new/old':>13} "
          f"{'old peak RSS MiB':>16} {'old precision':>13}  old recall by edit rate")
    for i, (cfg, new) in enumerate(zip(CONFIGS, new_runs)):
        out = subprocess.run([sys.executable, __file__, "--one", str(i), "--filler-mb", str(a.filler_mb),
                              "--kernel", "datatrove"], capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        name = f"{cfg['ngram']}-gram {cfg['buckets']}x{cfg['hashes_per_bucket']}"
        print(f"{name:32} {r['seconds']:6.1f} {r['docs'] / r['seconds']:10.0f} {r['mb'] / r['seconds']:8.2f} "
              f"{new['seconds']:6.1f} {r['seconds'] / new['seconds']:13.2f} {r['peak_rss_mib']:16.0f} "
              f"{r['precision']:13.3f}  {r['recall']}", flush=True)


if __name__ == "__main__":
    main()
