"""Benchmark: exact-substring dedup (whole stage: tokenize + suffix array + spans + cut) at 25, 50, 100 MB.

Each (size, mode) runs in a fresh subprocess so peak RSS is that run's own. Prints MB/s, peak RSS
(process peak, and as a multiple of the shard's text bytes), recall of planted spans, and the
GPT-2 tokenizer alone (tiktoken, same threads, same text) as the in-run baseline ratio; then the
growth of time from 25 to 100 MB against n log n.

    python scripts/bench/esd.py                 # 25, 50, 100 MB, tokens + bytes
    python scripts/bench/esd.py --sizes 25 --modes tokens
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    return _status_mb("VmRSS:")


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM), so the corpus generator's peak is not counted."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def one(mb: float, mode: str, threads: int) -> dict:
    from datatrove.data import Document

    from curate.dedup.exact_substring import ExactSubstringDedup
    from curate.dedup.tokenize import get_tokenizer
    from esd_corpus import generate, recall

    texts, plants = generate(mb, seed=0)
    text_bytes = sum(len(t.encode()) for t in texts)
    base = {}
    if mode == "tokens":
        tok = get_tokenizer(None, threads)
        t0 = time.perf_counter()
        tok.encode_batch(texts)
        base["tokenizer_s"] = time.perf_counter() - t0
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    del texts
    import gc

    gc.collect()
    rss_before = rss_mb()
    reset_peak()
    step = ExactSubstringDedup(units=mode, min_length=50 if mode == "tokens" else 200, keep="first",
                               shard_bytes=10**12, threads=threads, max_memory_gb=20)
    t0 = time.perf_counter()
    out = [d.text for d in step(iter(docs))]
    dt = time.perf_counter() - t0
    peak = _status_mb("VmHWM:")
    return {"mb": mb, "mode": mode, "text_mb": text_bytes / 1e6, "docs": len(docs), "seconds": dt,
            "mb_s": text_bytes / 1e6 / dt, "peak_rss_mb": peak, "rss_before_mb": rss_before,
            "peak_x_text": peak * 2**20 / text_bytes, "stage_x_text": (peak - rss_before) * 2**20 / text_bytes,
            "recall": recall(out, plants), "plants": len(plants), **base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25,50,100")
    ap.add_argument("--modes", default="tokens,bytes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(float(a.one[0]), a.one[1], a.threads)))
        return
    rows = []
    print(f"{'mode':7} {'MB':>6} {'s':>7} {'MB/s':>6} {'tok-only MB/s':>13} {'stage/tok':>9} {'peakRSS MB':>10} "
          f"{'peak/text':>9} {'stage/text':>10} {'recall':>7}")
    for mode in a.modes.split(","):
        for mb in [float(x) for x in a.sizes.split(",")]:
            res = subprocess.run([sys.executable, __file__, "--one", str(mb), mode, "--threads", str(a.threads)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(r)
            tok = r["text_mb"] / r["tokenizer_s"] if "tokenizer_s" in r else float("nan")
            print(f"{mode:7} {r['text_mb']:6.1f} {r['seconds']:7.1f} {r['mb_s']:6.2f} {tok:13.2f} "
                  f"{r['mb_s'] / tok if tok == tok else float('nan'):9.2f} {r['peak_rss_mb']:10.0f} {r['peak_x_text']:9.2f} "
                  f"{r['stage_x_text']:10.2f} {r['recall']:7.3f}", flush=True)
    for mode in a.modes.split(","):
        rs = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["text_mb"])
        if len(rs) >= 2:
            lo, hi = rs[0], rs[-1]
            n0, n1 = lo["text_mb"] * 1e6, hi["text_mb"] * 1e6
            print(f"{mode}: growth {lo['text_mb']:.0f} -> {hi['text_mb']:.0f} MB: time x{hi['seconds'] / lo['seconds']:.2f} "
                  f"(linear x{n1 / n0:.2f}, n log n x{n1 * math.log(n1) / (n0 * math.log(n0)):.2f})")


if __name__ == "__main__":
    main()
