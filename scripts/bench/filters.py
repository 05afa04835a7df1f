#!/usr/bin/env python
"""Benchmark: the GneissWeb ensemble stage, fast kernel vs the reference kernel, on the bundled sample.

    python scripts/bench/filters.py [--repeat 3] [--batch-size 256]

Stage: `gneissweb_ensemble` through `run_stages` (accounting, preprocessing, 6 fastText models,
tokenizer, EFLAW, rule), with the committed sample models and the GPT-2 tokenizer, once with
`kernel: fast` (fastokens token counts in a thread, overlapped with fastText; EFLAW of each batch
in numpy) and once with `kernel: reference` (HF `tokenizers`, EFLAW step by step as textstat does
it: the stage before issue 14). Both write the same columns (checked here on every document, and
by tests/filters/test_ensemble_kernels.py). On the same documents, in the same batches, with the
text flattened beforehand (outside the timer):
- kernels: the 6 fastText `predict(list)` calls and the fast token count, one after another (the
  figure of the first issue-14 benchmark);
- fastText floor: the 6 predictor calls as the fast stage makes them (`multilinePredict` on the
  prepared lines), alone: what the fast stage cannot go below without a faster fastText (it holds
  the GIL, so none of the stage's Python work can run beside it).
Prints docs/s, MB/s (UTF-8 input), the best of `--repeat` runs each (interleaved, since the
machine is shared), the same-run ratios, the load average before and after, and the peak RSS of
one run of each kernel, each in a fresh process (`--rss KERNEL`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "filters" / "assets" / "models"
TOKENIZER = REPO / "dedup" / "assets" / "gpt2" / "tokenizer.json"
CATS = ("medical", "education", "technology", "science")


def load_docs() -> list[str]:
    return [
        json.loads(line)["text"]
        for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz"))
        for line in gzip.open(f, "rt")
    ]


def stage_config(batch_size: int, kernel: str = "fast") -> dict:
    return {
        "stage": "gneissweb_ensemble",
        "kernel": kernel,
        "quality_models": [
            {"name": "dclm", "path": str(MODELS / "quality_dclm.ftz"), "preprocess": "dclm"},
            {"name": "cosmo", "path": str(MODELS / "quality_cosmo.ftz"), "preprocess": "newlines"},
        ],
        "category_models": [{"name": c, "path": str(MODELS / f"category_{c}.ftz")} for c in CATS],
        "tokenizer": str(TOKENIZER),
        "batch_size": batch_size,
    }


def run_stage(docs: list[str], batch_size: int, kernel: str = "fast", annotate_only: bool = False):  # noqa: ANN201
    """(seconds, the stage's stats, the output documents)."""
    from curate.pipeline import run_stages

    t = time.perf_counter()
    res = run_stages(docs, [{**stage_config(batch_size, kernel), "annotate_only": annotate_only}])
    return time.perf_counter() - t, res.stats[-1], res.docs


def run_kernels(docs: list[str], batch_size: int) -> tuple[float, float]:
    """(seconds of the kernels, seconds of the fastText floor): see the module's docstring."""
    import fasttext

    from curate.filters.fasttext_scoring import FastTextModel, flatten_lines, preprocess
    from curate.filters.token_counts import TokenCounter

    models = [
        (fasttext.load_model(str(MODELS / "quality_dclm.ftz")), "dclm"),
        (fasttext.load_model(str(MODELS / "quality_cosmo.ftz")), "newlines"),
    ]
    models += [(fasttext.load_model(str(MODELS / f"category_{c}.ftz")), "newlines") for c in CATS]
    tok = TokenCounter(str(TOKENIZER))
    tok.load()
    batches = [docs[i : i + batch_size] for i in range(0, len(docs), batch_size)]
    flat = [{m: [preprocess(t, m) for t in b] for m in ("dclm", "newlines")} for b in batches]
    t = time.perf_counter()
    for b, f in zip(batches, flat):
        for model, mode in models:
            model.predict(f[mode], k=-1, threshold=0.0)
        tok.count(b)
    kernels = time.perf_counter() - t
    wrapped = []
    for model, mode in models:
        w = FastTextModel("loaded above")
        w._model = model
        wrapped.append((w, mode))
    lines = [flatten_lines(b, {"dclm", "newlines"}) for b in batches]
    t = time.perf_counter()
    for ls in lines:
        for w, mode in wrapped:
            w.line_distributions(ls[mode])
    return kernels, time.perf_counter() - t


def _vm_hwm_mib() -> float:
    """This process's peak RSS. Not ru_maxrss: Linux carries that over from the forking parent across exec."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss(kernel: str, batch_size: int) -> float:
    """Peak RSS (MiB) of a fresh process that runs the stage once with `kernel`."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss", kernel, "--batch-size", str(batch_size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rss", choices=("fast", "reference"), help="run the stage once with this kernel, print peak RSS")
    args = ap.parse_args()
    docs = load_docs()
    if args.rss:
        run_stage(docs, args.batch_size, args.rss)
        print(_vm_hwm_mib())
        return
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    for kernel in ("fast", "reference"):  # warm up: model loading is not what we measure
        run_stage(docs[:64], args.batch_size, kernel)
    # the same columns, every document (annotate_only keeps the dropped ones too)
    cols = {
        k: [d.metadata for d in run_stage(docs, args.batch_size, k, annotate_only=True)[2]]
        for k in ("fast", "reference")
    }
    identical = cols["fast"] == cols["reference"]
    times: dict[str, list[float]] = {"fast": [], "reference": [], "kernels": [], "fastText floor": []}
    stats: dict = {}
    load_before = os.getloadavg()
    for _ in range(args.repeat):
        t, stats, _ = run_stage(docs, args.batch_size, "fast")
        times["fast"].append(t)
        times["reference"].append(run_stage(docs, args.batch_size, "reference")[0])
        kernels, floor = run_kernels(docs, args.batch_size)
        times["kernels"].append(kernels)
        times["fastText floor"].append(floor)
    load_after = os.getloadavg()
    f, r, k, ft = (min(times[x]) for x in ("fast", "reference", "kernels", "fastText floor"))
    rss = {x: peak_rss(x, args.batch_size) for x in ("fast", "reference")}
    n = len(docs)
    print(
        f"docs: {n}, {mb:.2f} MB; kept {stats['docs_out']}, dropped {stats['dropped']}; conserved {stats['conserved']}"
    )
    print(f"columns of kernel fast == kernel reference on every document: {identical}")
    print(
        f"stage, kernel fast      : {n / f:8.1f} docs/s  {mb / f:6.2f} MB/s  (best of {args.repeat}: {f:.2f} s)  "
        f"peak RSS {rss['fast']:.0f} MiB"
    )
    print(
        f"stage, kernel reference : {n / r:8.1f} docs/s  {mb / r:6.2f} MB/s  (best of {args.repeat}: {r:.2f} s)  "
        f"peak RSS {rss['reference']:.0f} MiB"
    )
    print(
        f"kernels (6 predicts + fast token count): {n / k:8.1f} docs/s  {mb / k:6.2f} MB/s  (best of {args.repeat}: {k:.2f} s)"
    )
    print(
        f"fastText floor (6 predictor calls)      : {n / ft:8.1f} docs/s  {mb / ft:6.2f} MB/s  "
        f"(best of {args.repeat}: {ft:.2f} s)"
    )
    print(
        f"ratio fast / reference throughput: {r / f:.2f}   fast stage / kernels: {k / f:.2f}   "
        f"fast stage / fastText floor: {ft / f:.2f}"
    )
    print(
        "load average (1, 5, 15 min) before: "
        + " ".join(f"{x:.2f}" for x in load_before)
        + "; after: "
        + " ".join(f"{x:.2f}" for x in load_after)
        + f" ({os.cpu_count()} CPUs)"
    )
    print("all runs (s): " + "; ".join(f"{x} " + " ".join(f"{v:.2f}" for v in times[x]) for x in times))


if __name__ == "__main__":
    main()
