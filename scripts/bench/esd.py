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

`--baseline` (default on; `--no-baseline` to skip): the same rows again with the old kernel this stage
replaced, in the same run (fresh processes, same repeats, same corpus): tokens mode with tiktoken as the
tokenizer engine and Kasai's LCP array for the adjacent-suffix check (`duplicate_runs(method="kasai")`),
bytes mode with Kasai's LCP; everything else in the step is today's code. Printed as "ratio new/old"
(MB/s of the current kernel over the old one's) and whether both cut the same text (sha1 of the output).
`--baseline-sizes` runs it on fewer sizes (default: all of `--sizes`).

    python scripts/bench/esd.py                 # 25, 50, 100 MB, tokens + bytes
    python scripts/bench/esd.py --sizes 25 --modes tokens
    python scripts/bench/esd.py --baseline-sizes 25      # the old-kernel pass at 25 MB only
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
        subprocess.run(
            [sys.executable, str(gen), "--mb", str(mb), "--seed", str(seed), "--out", str(out)],
            check=True,
            capture_output=True,
        )
    return out


def read_texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def use_old_kernel() -> None:
    """The kernel the current one replaced, in this process: tiktoken as the GPT-2 tokenizer engine and
    Kasai's LCP for the adjacent-suffix check (the step itself has no option for either)."""
    import functools

    import curate.dedup.stages.exact_substring as es
    import curate.dedup.tokenize as tk

    get = tk.get_tokenizer
    tk.get_tokenizer = lambda path=None, threads=2, engine=None: get(path, threads, engine or "tiktoken")
    es.duplicate_runs = functools.partial(es.duplicate_runs, method="kasai")


def one(mb: float, mode: str, threads: int, by_tokens: bool = False, old: bool = False) -> dict:
    from datatrove.data import Document

    if old:
        use_old_kernel()
    from esd_corpus import Plant, recall

    from curate.dedup.stages.exact_substring import ExactSubstringDedup, ExactSubstringOptions
    from curate.dedup.tokenize import get_tokenizer

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
    # one shard of the whole corpus: shard_bytes is reached at the last document; a token is at least a byte, so
    # shard_tokens=text_bytes is never reached before it (sizes the options' memory check accepts, unlike 10**12)
    step = ExactSubstringDedup(
        ExactSubstringOptions(
            units=mode,
            min_length=50 if mode == "tokens" else 200,
            keep="first",
            shard_bytes=text_bytes,
            shard_tokens=text_bytes if by_tokens else None,
            threads=threads,
            max_memory_gb=20,
        )
    )
    t0 = time.perf_counter()
    out = [d.text for d in step(iter(docs))]
    dt = time.perf_counter() - t0
    peak = _status_mb("VmHWM:")
    out_sha = hashlib.sha1("\0".join(out).encode("utf-8", "surrogatepass")).hexdigest()
    plants = [Plant(**p) for p in json.loads(Path(str(path) + ".plants.json").read_text(encoding="utf-8"))]
    base = {}
    if mode == "tokens":  # the in-run baseline: the same tokenizer alone on the same (uncut) text
        texts = read_texts(path)
        t0 = time.perf_counter()
        get_tokenizer(None, threads).encode_batch(texts)
        base["tokenizer_s"] = time.perf_counter() - t0
    return {
        "mb": mb,
        "mode": mode,
        "text_mb": text_bytes / 1e6,
        "docs": len(docs),
        "seconds": dt,
        "mb_s": text_bytes / 1e6 / dt,
        "peak_rss_mb": peak,
        "rss_before_mb": rss_before,
        "rss_interp_mb": rss_interp,
        "peak_x_text": peak * 2**20 / text_bytes,
        "shard_x_text": (peak - rss_interp) * 2**20 / text_bytes,
        "estimate_x_text": step.last_estimate / text_bytes,
        "recall": recall(out, plants),
        "plants": len(plants),
        "engine": get_tokenizer(None, threads).engine if mode == "tokens" else None,
        "out_sha1": out_sha,
        **base,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25,50,100")
    ap.add_argument("--modes", default="tokens,bytes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--by-tokens",
        action="store_true",
        help="shards by shard_tokens (documents tokenized as they arrive) instead of shard_bytes",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="fresh runs per (size, mode); the fastest is shown (shared machines are noisy), with the spread",
    )
    ap.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the old kernel (tiktoken + Kasai LCP) in the same run and print ratio new/old",
    )
    ap.add_argument("--baseline-sizes", help="sizes for the old-kernel pass (default: --sizes)")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--old", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(float(a.one[0]), a.one[1], a.threads, a.by_tokens, a.old)))
        return

    def fastest(mb: float, mode: str, old: bool = False) -> tuple[dict, list[dict]]:
        runs = []
        for _ in range(max(1, a.repeat)):
            res = subprocess.run(
                [sys.executable, __file__, "--one", str(mb), mode, "--threads", str(a.threads)]
                + (["--by-tokens"] if a.by_tokens else [])
                + (["--old"] if old else []),
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        return min(runs, key=lambda x: x["seconds"]), runs

    rows = []
    print(
        f"{'mode':7} {'MB':>6} {'s':>7} {'MB/s':>6} {'tok-only MB/s':>13} {'stage/tok':>9} {'peakRSS MB':>10} "
        f"{'peak/text':>9} {'shard/text':>10} {'model/text':>10} {'recall':>7}  MB/s of all runs"
    )
    for mode in a.modes.split(","):
        for mb in [float(x) for x in a.sizes.split(",")]:
            r, runs = fastest(mb, mode)
            rows.append(r)
            tok = r["text_mb"] / r["tokenizer_s"] if "tokenizer_s" in r else float("nan")
            print(
                f"{mode:7} {r['text_mb']:6.1f} {r['seconds']:7.1f} {r['mb_s']:6.2f} {tok:13.2f} "
                f"{r['mb_s'] / tok if tok == tok else float('nan'):9.2f} {r['peak_rss_mb']:10.0f} {r['peak_x_text']:9.2f} "
                f"{r['shard_x_text']:10.2f} {r['estimate_x_text']:10.2f} {r['recall']:7.3f}  "
                + " ".join(f"{x['mb_s']:.2f}" for x in runs),
                flush=True,
            )
    for mode in a.modes.split(","):
        rs = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["text_mb"])
        if len(rs) >= 2:
            lo, hi = rs[0], rs[-1]
            n0, n1 = lo["text_mb"] * 1e6, hi["text_mb"] * 1e6
            print(
                f"{mode}: growth {lo['text_mb']:.0f} -> {hi['text_mb']:.0f} MB: time x{hi['seconds'] / lo['seconds']:.2f} "
                f"(linear x{n1 / n0:.2f}, n log n x{n1 * math.log(n1) / (n0 * math.log(n0)):.2f})"
            )
    if not a.baseline:
        return
    sizes = [float(x) for x in (a.baseline_sizes or a.sizes).split(",")]
    print(
        f"\nbaseline, same run: the old kernel (tokens: tiktoken + Kasai LCP; bytes: Kasai LCP), fastest of "
        f"{max(1, a.repeat)} fresh runs"
    )
    print(
        f"{'mode':7} {'MB':>6} {'engine':>9} {'old s':>7} {'old MB/s':>8} {'new MB/s':>8} {'ratio new/old':>13} "
        f"{'old peak/text':>13} {'same output':>11}  old MB/s of all runs"
    )
    for mode in a.modes.split(","):
        for mb in sizes:
            new = next((r for r in rows if r["mode"] == mode and r["mb"] == mb), None)
            if new is None:
                new, _ = fastest(mb, mode)
            old, runs = fastest(mb, mode, old=True)
            print(
                f"{mode:7} {old['text_mb']:6.1f} {old.get('engine') or '-':>9} {old['seconds']:7.1f} {old['mb_s']:8.2f} "
                f"{new['mb_s']:8.2f} {new['mb_s'] / old['mb_s']:13.2f} {old['peak_x_text']:13.2f} "
                f"{'yes' if old['out_sha1'] == new['out_sha1'] else 'NO':>11}  "
                + " ".join(f"{x['mb_s']:.2f}" for x in runs),
                flush=True,
            )


if __name__ == "__main__":
    main()
