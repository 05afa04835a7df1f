"""Peak RSS of one worker over 1x and 10x the input: streaming stages must not grow with the input.

    python scripts/bench/memory.py                    # read -> length_filter -> write, sample x1 vs x10
    python scripts/bench/memory.py --factor 20 --stages '[{"stage": "length_filter"}, {"stage": "prox_refine", "backend": "boilerplate"}]'

Each run is `curate run` in a child process with one task and one worker (the task runs in that
process), so the child's peak RSS (getrusage of children) is the worker's peak. Prints both
figures, docs/s, and the ratio big/small; the bundled sample (1,697 docs, 4.7 M chars) is copied
FACTOR times into a scratch folder for the big run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"


def replicate(dest: Path, copies: int) -> Path:
    dest.mkdir(parents=True)
    for i in range(copies):
        for f in sorted(SAMPLE.glob("*.jsonl.gz")):
            shutil.copy(f, dest / f"{i:03d}-{f.name}")
    return dest


def measure(inp: Path, out: Path, stages: list) -> dict:
    cfg = {
        "name": "memory",
        "input": {"format": "jsonl", "path": str(inp)},
        "output": {"path": str(out)},
        "executor": {"tasks": 1, "workers": 1},
        "stages": stages,
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(json.dumps(cfg))
    # a fresh interpreter per run: getrusage(RUSAGE_CHILDREN) reports the largest child waited for so far,
    # so each measurement runs under its own parent to keep the two apart
    probe = (
        "import resource, subprocess, sys; "
        "r = subprocess.run([sys.executable, '-m', 'curate.pipeline.cli', 'run', sys.argv[1], '--no-progress'], "
        "capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode); sys.stderr.write(r.stderr.decode()[-2000:])"
    )
    t = time.time()
    r = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True)
    wall = time.time() - t
    rss_kb, rc = (int(x) for x in r.stdout.split())
    if rc != 0:
        raise SystemExit(f"curate run failed:\n{r.stderr}")
    stats = json.loads((out / "stats.json").read_text())
    return {
        "docs": stats["input_records"],
        "peak_rss_mib": rss_kb / 1024,
        "wall_s": wall,
        "docs_per_s": stats["input_records"] / wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--stages", default='[{"stage": "length_filter", "min_words": 5}]', help="JSON list of stages")
    a = ap.parse_args()
    stages = json.loads(a.stages)
    with tempfile.TemporaryDirectory(prefix="curate-mem-") as tmp:
        t = Path(tmp)
        small = measure(replicate(t / "in1", 1), t / "out1", stages)
        big = measure(replicate(t / f"in{a.factor}", a.factor), t / f"out{a.factor}", stages)
    print(f"stages: {', '.join(s['stage'] for s in stages)}  (1 task, 1 worker)")
    for name, m in (("x1", small), (f"x{a.factor}", big)):
        print(
            f"{name:>4}: {m['docs']:>7,} docs  peak RSS {m['peak_rss_mib']:7.1f} MiB  "
            f"{m['wall_s']:6.1f} s  {m['docs_per_s']:8,.0f} docs/s"
        )
    print(
        f"peak RSS ratio x{a.factor}/x1: {big['peak_rss_mib'] / small['peak_rss_mib']:.2f}  "
        f"(input ratio {big['docs'] / small['docs']:.0f})"
    )


if __name__ == "__main__":
    main()
