"""Benchmark: tokenized output (`curate tokenize`, the same jobs as `output.tokenize`) against the
tokenizer alone on the same text, in the same run: seconds, MB/s of UTF-8 text, peak RSS, the ratio.

Ratios are of CPU seconds (user + sys of every thread): on a shared 2-core machine wall time swings
2-3x with the other work, CPU time much less. Tokenizer threads: `--threads` (default 1, so a figure is
per core; RAYON_NUM_THREADS, which HF `tokenizers` reads).

Corpus: the ESD benchmark's cached corpus (scripts/esd_corpus.py: real words, web-like lengths) written
as an output folder's data/ (zstd Parquet, FILES files). Variants, each in a fresh process (so its peak
RSS is its own), alternated REPEATS times, best time kept (other work on the machine only slows a run):
- `tokenizer`: the texts already in memory, `encode_batch` in batches of the writers' size with the
  writers' EOS post-processor, ids dropped after counting: the floor of any tokenized output.
- `megatron`, `datatrove`: `tokenize_folder` (read Parquet, tokenize, write shards, merge for datatrove,
  count from the index files), one task per data file, one worker, like `curate tokenize OUT`.

    python scripts/bench/tokenized_output.py [--mb 50] [--files 2] [--repeats 3] [--tokenizer dedup/assets/gpt2]

(Not `tokenize.py`: a script's folder comes first on sys.path, and that name would hide the standard
library's `tokenize`, which pandas and inspect import.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))


def make_output(mb: float, files: int, folder: Path) -> float:
    """OUT/data/NNNNN.parquet from the cached corpus; returns the text's UTF-8 MB."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from esd import corpus, read_texts

    texts = read_texts(corpus(mb))
    (folder / "data").mkdir(parents=True, exist_ok=True)
    per = -(-len(texts) // files)
    for f in range(files):
        part = texts[f * per : (f + 1) * per]
        ids = [f"{f}/{i}" for i in range(len(part))]
        pq.write_table(pa.table({"id": ids, "text": part}), folder / "data" / f"{f:05d}.parquet", compression="zstd")
    return sum(len(t.encode()) for t in texts) / 1e6


def one(variant: str, folder: Path, tokenizer: str) -> dict:
    """Run one variant in this (fresh) process; time and peak RSS exclude the interpreter's start."""
    from esd import _status_mb, reset_peak

    from curate.pipeline.config import TokenizeConfig
    from curate.pipeline.tokenize_output import BATCH_SIZE, resolve_tokenizer

    opts = resolve_tokenizer(
        TokenizeConfig(tokenizer=tokenizer, format="datatrove" if variant == "datatrove" else "megatron")
    )
    if variant == "tokenizer":
        import pyarrow.parquet as pq

        from curate.pipeline.commands.subset_build import shard_tokenizer

        texts = [t for f in sorted((folder / "data").glob("*.parquet")) for t in pq.read_table(f)["text"].to_pylist()]
        tok = shard_tokenizer(opts)
        reset_peak()
        start, cpu = time.perf_counter(), _cpu_s()
        tokens = sum(
            len(e.ids) for i in range(0, len(texts), BATCH_SIZE) for e in tok.encode_batch(texts[i : i + BATCH_SIZE])
        )
    else:
        from curate.pipeline.commands.tokenize_folder import tokenize_folder
        from curate.pipeline.logs import quiet_console

        reset_peak()
        start, cpu = time.perf_counter(), _cpu_s()
        with quiet_console(), tempfile.TemporaryDirectory() as work:
            tokens = tokenize_folder(str(folder), opts, work)["tokens"]
    wall = time.perf_counter() - start
    return {"variant": variant, "s": wall, "cpu_s": _cpu_s() - cpu, "tokens": tokens, "peak_mb": _status_mb("VmHWM:")}


def _cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=50)
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tokenizer", default=str(REPO / "dedup" / "assets" / "gpt2"))
    ap.add_argument("--threads", type=int, default=1, help="tokenizer threads per process (default 1)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, Path(args.folder), args.tokenizer)))
        return
    with tempfile.TemporaryDirectory(prefix="curate-bench-tokenize-") as tmp:
        mb = make_output(args.mb, args.files, Path(tmp))
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for variant in ("tokenizer", "megatron", "datatrove"):
                cmd = [sys.executable, __file__, "--one", variant, "--folder", tmp, "--tokenizer", args.tokenizer]
                env = {**os.environ, "RAYON_NUM_THREADS": str(args.threads)}
                run = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if run.returncode:
                    sys.exit(f"{variant} failed:\n{run.stderr[-3000:]}")
                r = json.loads(run.stdout.splitlines()[-1])
                if variant not in best or r["cpu_s"] < best[variant]["cpu_s"]:
                    best[variant] = r
    assert len({r["tokens"] for r in best.values()}) == 1, best  # every variant saw the same tokens
    base = best["tokenizer"]["cpu_s"]
    print(
        f"{mb:.1f} MB of text, {best['tokenizer']['tokens']:,} tokens, {args.files} files, "
        f"{args.threads} tokenizer thread(s), best of {args.repeats} by CPU time"
    )
    print(f"{'variant':<10} {'cpu s':>7} {'wall s':>7} {'MB/cpu-s':>9} {'x tokenizer':>12} {'peak MB':>8}")
    for v, r in best.items():
        print(
            f"{v:<10} {r['cpu_s']:7.2f} {r['s']:7.2f} {mb / r['cpu_s']:9.2f} {r['cpu_s'] / base:12.3f} "
            f"{r['peak_mb']:8.0f}"
        )


if __name__ == "__main__":
    main()
