#!/usr/bin/env python
"""Benchmark: the full GneissWeb ensemble stage vs its irreducible kernels, on the bundled sample.

    python scripts/bench/filters.py [--repeat 3] [--batch-size 256]

Stage: `gneissweb_ensemble` through `run_stages` (accounting, preprocessing, 6 fastText models,
tokenizer, EFLAW, rule), with the committed sample models and the GPT-2 tokenizer.
Kernels: on the same documents, only the 6 fastText `predict` calls (on text flattened
beforehand, outside the timer) and the tokenizer's `encode_batch_fast`, in the same batches.
Prints docs/s, MB/s (UTF-8 input), the best of `--repeat` runs each (interleaved, since the
machine is shared), the ratio stage/kernels and peak RSS of this process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "filters" / "assets" / "models"
TOKENIZER = REPO / "dedup" / "assets" / "gpt2" / "tokenizer.json"
CATS = ("medical", "education", "technology", "science")


def load_docs() -> list[str]:
    return [json.loads(line)["text"] for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz"))
            for line in gzip.open(f, "rt")]


def stage_config(batch_size: int) -> dict:
    return {"stage": "gneissweb_ensemble",
            "quality_models": [{"name": "dclm", "path": str(MODELS / "quality_dclm.ftz"), "preprocess": "dclm"},
                               {"name": "cosmo", "path": str(MODELS / "quality_cosmo.ftz"), "preprocess": "newlines"}],
            "category_models": [{"name": c, "path": str(MODELS / f"category_{c}.ftz")} for c in CATS],
            "tokenizer": str(TOKENIZER), "batch_size": batch_size}


def run_stage(docs: list[str], batch_size: int) -> tuple[float, dict]:
    from curate.pipeline import run_stages

    t = time.perf_counter()
    res = run_stages(docs, [stage_config(batch_size)])
    return time.perf_counter() - t, res.stats[-1]


def run_kernels(docs: list[str], batch_size: int) -> float:
    import fasttext
    from tokenizers import Tokenizer

    from curate.filters.fasttext_annotator import preprocess

    models = [(fasttext.load_model(str(MODELS / "quality_dclm.ftz")), "dclm"),
              (fasttext.load_model(str(MODELS / "quality_cosmo.ftz")), "newlines")]
    models += [(fasttext.load_model(str(MODELS / f"category_{c}.ftz")), "newlines") for c in CATS]
    tok = Tokenizer.from_file(str(TOKENIZER))
    tok.no_truncation()
    tok.no_padding()
    batches = [docs[i:i + batch_size] for i in range(0, len(docs), batch_size)]
    flat = [{m: [preprocess(t, m) for t in b] for m in ("dclm", "newlines")} for b in batches]
    t = time.perf_counter()
    for b, f in zip(batches, flat):
        for model, mode in models:
            model.predict(f[mode], k=-1, threshold=0.0)
        tok.encode_batch_fast(b, add_special_tokens=False)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    docs = load_docs()
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    run_stage(docs[:64], args.batch_size)  # warm up: model loading is not what we measure
    stage_t, kernel_t = [], []
    stats: dict = {}
    for _ in range(args.repeat):
        t, stats = run_stage(docs, args.batch_size)
        stage_t.append(t)
        kernel_t.append(run_kernels(docs, args.batch_size))
    s, k = min(stage_t), min(kernel_t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(docs)
    print(f"docs: {n}, {mb:.2f} MB; kept {stats['docs_out']}, dropped {stats['dropped']}; conserved {stats['conserved']}")
    print(f"stage   (gneissweb_ensemble): {n / s:8.1f} docs/s  {mb / s:6.2f} MB/s  (best of {args.repeat}: {s:.2f} s)")
    print(f"kernels (6 predicts + encode): {n / k:8.1f} docs/s  {mb / k:6.2f} MB/s  (best of {args.repeat}: {k:.2f} s)")
    print(f"ratio stage/kernels throughput: {k / s:.2f}   peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
