"""Benchmark: exact-substring dedup (whole stage: tokenize + suffix array + spans + cut) at 25, 50, 100 MB.

The corpus (scripts/esd_corpus.py: real words, novel at the 50-token scale, planted repeats with
ground truth) is generated once by a separate process and cached under /tmp/curate-bench. Each
(size, mode) runs in a fresh subprocess that reads it into Documents, as a pipeline task would, so
peak RSS is that run's own. Columns:
  MB/s           text through the whole stage (tokenize + suffix array + spans + cut)
  tok-only MB/s  the GPT-2 tokenizer alone on the same text with the same threads (the in-run
                 baseline); stage/tok is the ratio
  peak/text      the process's peak RSS over the shard's UTF-8 bytes (interpreter included)
  shard/text     the same above the interpreter's RSS with everything imported (what the shard costs)
  model/text     what the step's memory model predicted (it refuses shards over max_memory_gb by it)
  recall         planted spans whose middle is gone
then the growth of time from 25 to 100 MB against n log n. Each row is the fastest of `--repeat`
fresh runs (default 2; all runs' MB/s are listed after it).

    python scripts/bench/esd.py                 # 25, 50, 100 MB, tokens + bytes
    python scripts/bench/esd.py --sizes 25 --modes tokens
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path("/tmp/curate-bench")
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


def corpus(mb: float, seed: int = 0) -> Path:
    """The seeded corpus as jsonl (+ `.plants.json`), built once by a separate process and cached: the
    measured process reads it like a pipeline task reads its input, without the generator's garbage."""
    gen = REPO / "scripts" / "esd_corpus.py"
    version = hashlib.sha1(gen.read_bytes()).hexdigest()[:8]  # a changed generator never reuses an old corpus
    out = CACHE / f"esd-{mb:g}mb-seed{seed}-{version}.jsonl"
    if not (out.exists() and Path(str(out) + ".plants.json").exists()):
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(gen), "--mb", str(mb), "--seed", str(seed),
                        "--out", str(out)], check=True, capture_output=True)
    return out


def read_texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def one(mb: float, mode: str, threads: int, by_tokens: bool = False) -> dict:
    from datatrove.data import Document

    from curate.dedup.exact_substring import ExactSubstringDedup
    from curate.dedup.tokenize import get_tokenizer
    from esd_corpus import Plant, recall

    path = corpus(mb)
    if mode == "tokens":
        get_tokenizer(None, threads)  # built once per process in a pipeline too (~0.3 s)
    rss_interp = rss_mb()  # the interpreter with everything imported, before any document
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(read_texts(path))]
    text_bytes = sum(len(d.text.encode()) for d in docs)
    import gc

    gc.collect()
    rss_before = rss_mb()
    reset_peak()
    step = ExactSubstringDedup(units=mode, min_length=50 if mode == "tokens" else 200, keep="first",
                               shard_bytes=10**12, shard_tokens=10**12 if by_tokens else None, threads=threads,
                               max_memory_gb=20)
    t0 = time.perf_counter()
    out = [d.text for d in step(iter(docs))]
    dt = time.perf_counter() - t0
    peak = _status_mb("VmHWM:")
    plants = [Plant(**p) for p in json.loads(Path(str(path) + ".plants.json").read_text(encoding="utf-8"))]
    base = {}
    if mode == "tokens":  # the in-run baseline: the same tokenizer alone on the same (uncut) text
        texts = read_texts(path)
        t0 = time.perf_counter()
        get_tokenizer(None, threads).encode_batch(texts)
        base["tokenizer_s"] = time.perf_counter() - t0
    return {"mb": mb, "mode": mode, "text_mb": text_bytes / 1e6, "docs": len(docs), "seconds": dt,
            "mb_s": text_bytes / 1e6 / dt, "peak_rss_mb": peak, "rss_before_mb": rss_before, "rss_interp_mb": rss_interp,
            "peak_x_text": peak * 2**20 / text_bytes, "shard_x_text": (peak - rss_interp) * 2**20 / text_bytes,
            "estimate_x_text": step.last_estimate / text_bytes, "recall": recall(out, plants), "plants": len(plants),
            **base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25,50,100")
    ap.add_argument("--modes", default="tokens,bytes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--by-tokens", action="store_true",
                    help="shards by shard_tokens (documents tokenized as they arrive) instead of shard_bytes")
    ap.add_argument("--repeat", type=int, default=2,
                    help="fresh runs per (size, mode); the fastest is shown (shared machines are noisy), with the spread")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(float(a.one[0]), a.one[1], a.threads, a.by_tokens)))
        return
    rows = []
    print(f"{'mode':7} {'MB':>6} {'s':>7} {'MB/s':>6} {'tok-only MB/s':>13} {'stage/tok':>9} {'peakRSS MB':>10} "
          f"{'peak/text':>9} {'shard/text':>10} {'model/text':>10} {'recall':>7}  MB/s of all runs")
    for mode in a.modes.split(","):
        for mb in [float(x) for x in a.sizes.split(",")]:
            runs = []
            for _ in range(max(1, a.repeat)):
                res = subprocess.run([sys.executable, __file__, "--one", str(mb), mode, "--threads", str(a.threads)]
                                     + (["--by-tokens"] if a.by_tokens else []),
                                     capture_output=True, text=True, check=True)
                runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
            r = min(runs, key=lambda x: x["seconds"])
            rows.append(r)
            tok = r["text_mb"] / r["tokenizer_s"] if "tokenizer_s" in r else float("nan")
            print(f"{mode:7} {r['text_mb']:6.1f} {r['seconds']:7.1f} {r['mb_s']:6.2f} {tok:13.2f} "
                  f"{r['mb_s'] / tok if tok == tok else float('nan'):9.2f} {r['peak_rss_mb']:10.0f} {r['peak_x_text']:9.2f} "
                  f"{r['shard_x_text']:10.2f} {r['estimate_x_text']:10.2f} {r['recall']:7.3f}  "
                  + " ".join(f"{x['mb_s']:.2f}" for x in runs), flush=True)
    for mode in a.modes.split(","):
        rs = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["text_mb"])
        if len(rs) >= 2:
            lo, hi = rs[0], rs[-1]
            n0, n1 = lo["text_mb"] * 1e6, hi["text_mb"] * 1e6
            print(f"{mode}: growth {lo['text_mb']:.0f} -> {hi['text_mb']:.0f} MB: time x{hi['seconds'] / lo['seconds']:.2f} "
                  f"(linear x{n1 / n0:.2f}, n log n x{n1 * math.log(n1) / (n0 * math.log(n0)):.2f})")


if __name__ == "__main__":
    main()
