"""Benchmark: decontaminate in documents/s per core on the bundled sample's documents, with a 100k-item eval
collection, against a plain Python set of n-gram tuples in the same run; peak memory of each.

Documents: data/sample (1,697 real web documents, mean ~2.8k characters, ~445 words), repeated `--repeat`
times. Eval collection (seeded): `--items` items of 20-60 words drawn at random from the sample's words
(novel 13-grams, as a benchmark's are to a web crawl), and one item in 2,000 a real 40-word span of a sample
document (contamination to find: a few percent of the documents). Each measurement runs in a fresh process
(its peak RSS is its own: the index and the documents included); throughput is process CPU time, so it
reads per core even on a busy machine.

- kernel: `Searcher.search` over batches of ~2M characters (what the stage does per batch), exact index
- step: the `Decontaminate` step itself (annotate mode: columns set, report kept) over Documents, its index
  loaded before the timing (once per worker process; the load time is printed)
- bloom: the same kernel with the Bloom index (the default fp rate, 1e-6 per n-gram)
- python set: words by a regex over the lowercased text, every n-gram tuple looked up in a set of the eval
  n-gram tuples (the same words on ASCII text; the floor of a pure-Python implementation)

    python scripts/bench/decontaminate.py [--items 100000] [--repeat 5]
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
from typing import Any

REPO = Path(__file__).resolve().parents[2]
N = 13


def sample_texts() -> list[str]:
    out = []
    for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            out += [json.loads(line)["text"] for line in fh]
    return [t for t in out if t.strip()]


def eval_items(texts: list[str], count: int) -> list[str]:
    import random

    rng = random.Random(0)
    vocab = [w for t in texts for w in t.split()]
    items = []
    for i in range(count):
        if i % 2000 == 0:
            ws = rng.choice([t for t in texts[:200] if len(t.split()) > 60]).split()
            a = rng.randrange(len(ws) - 40)
            items.append(" ".join(ws[a : a + 40]))
        else:
            items.append(" ".join(rng.choices(vocab, k=rng.randint(20, 60))))
    return items


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(kind: str, items_n: int, repeat: int) -> dict:
    import numpy as np
    from datatrove.data import Document

    texts = sample_texts()
    items = eval_items(texts, items_n)
    docs = texts * repeat
    out: dict = {"kind": kind, "docs": len(docs), "eval_items": items_n}
    t0 = time.process_time()
    if kind == "python set":
        import re

        word = re.compile(r"[^\W_]+")
        grams: set[tuple[str, ...]] = set()
        for it in items:
            ws = word.findall(it.lower())
            grams.update(tuple(ws[i : i + N]) for i in range(len(ws) - N + 1))
        out["build_s"] = round(time.process_time() - t0, 2)
        out["eval_ngrams"] = len(grams)
        t0 = time.process_time()
        hit = 0
        for t in docs:
            ws = word.findall(t.lower())
            hit += any(tuple(ws[i : i + N]) in grams for i in range(len(ws) - N + 1))
        out["docs_hit"] = hit
    else:
        from curate.dedup import decontam as dc

        if kind == "bloom":
            _, hashes, _, _ = dc.item_ngrams(items, N)
            bloom = dc.BloomIndex.build(hashes, 1e-6)
            searcher = dc.Searcher(N, blooms=[bloom])
            out["index_bytes"] = int(bloom.bits.nbytes)
            out["eval_ngrams"] = int(hashes.shape[0])
            out["bloom_expected_fp_rate"] = bloom.expected_fp_rate
        else:
            index = dc.build_exact(items, np.zeros(len(items), dtype=np.int16), N)
            searcher = dc.Searcher(N, exact=index)
            out["index_bytes"] = index.nbytes
            out["index_text_bytes"] = int(index.blob.nbytes)
            out["eval_ngrams"] = int(index.occ_item.shape[0])
        out["index_bytes_per_ngram"] = round(out["index_bytes"] / max(out["eval_ngrams"], 1), 1)
        out["build_s"] = round(time.process_time() - t0, 2)
        searcher.search(docs[:10])  # numba's compiled kernel loads (from its cache) outside the timing
        step = _step(items) if kind == "step" else None
        if step is not None:
            from curate.dedup.stages.decontaminate import _Index

            t0 = time.process_time()
            _Index(step.index_folder)
            out["index_load_s"] = round(time.process_time() - t0, 3)  # once per worker process
            list(step(Document(t, str(i)) for i, t in enumerate(docs[:10])))
        t0 = time.process_time()
        if step is not None:
            found = step(Document(t, str(i)) for i, t in enumerate(docs))
            out["docs_hit"] = sum(1 for d in found if d.metadata["decon_hits"])
        else:
            hit = 0
            batch: list[str] = []
            size = 0
            for t in docs:
                batch.append(t)
                size += len(t)
                if size >= 1 << 21:
                    hit += len(searcher.search(batch))
                    batch, size = [], 0
            hit += len(searcher.search(batch))
            out["docs_hit"] = hit
    cpu = time.process_time() - t0
    out["cpu_s"] = round(cpu, 3)
    out["docs_per_s_per_core"] = round(len(docs) / cpu)
    out["us_per_doc"] = round(cpu / len(docs) * 1e6, 1)
    out["peak_rss_mb"] = round(peak_mb())
    return out


def _step(items: list[str]) -> Any:
    """The stage's step (annotate mode), its index written by the index step to a scratch folder."""
    import tempfile

    from curate.dedup.stages.decontaminate import Decontaminate, DecontaminateOptions, IndexEvalSets

    tmp = Path(tempfile.mkdtemp())
    with open(tmp / "e.jsonl", "w") as fh:
        fh.writelines(json.dumps({"text": t}) + "\n" for t in items)
    opts = DecontaminateOptions(mode="annotate", eval_sets=[{"name": "e", "path": str(tmp / "e.jsonl")}])
    list(IndexEvalSets(opts, str(tmp / "index")).run())
    return Decontaminate(opts, str(tmp / "index"), str(tmp / "report"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.items, args.repeat)))
        return
    rows = []
    for kind in ("kernel", "step", "bloom", "python set"):
        cmd = [sys.executable, __file__, "--one", kind, "--items", str(args.items), "--repeat", str(args.repeat)]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[-1]["docs_per_s_per_core"]
    for r in rows[:-1]:
        print(f"{r['kind']}: {r['docs_per_s_per_core']:,} docs/s per core ({r['us_per_doc']} us/doc), "
              f"{r['docs_per_s_per_core'] / base:.1f}x the Python set, peak RSS {r['peak_rss_mb']} MB, "
              f"index {r['index_bytes'] / 1e6:.1f} MB ({r['index_bytes_per_ngram']} B per eval n-gram"
              + (f", of which the eval text {r['index_text_bytes'] / 1e6:.1f} MB" if "index_text_bytes" in r else "")
              + f"), {r['docs_hit']:,} of {r['docs']:,} documents hit")  # fmt: skip
    print(f"python set: {base:,} docs/s per core, peak RSS {rows[-1]['peak_rss_mb']} MB")
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
