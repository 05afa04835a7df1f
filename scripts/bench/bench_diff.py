"""Browse a 100k-document output with `curate diff` and `curate report`: wall time and peak RSS.

    python scripts/bench/bench_diff.py [--docs 100000] [--keep DIR]

Builds an output folder in the layout `curate run` writes (ProX columns per the refiner's
contract, real web texts from the bundled sample) and runs each command in a fresh process,
reading its peak RSS from the kernel (`resource.getrusage(RUSAGE_CHILDREN)` after each child).
The baseline is `pyarrow.parquet.read_table` of the whole data/ folder: what "loading it whole"
costs, measured in the same run (the machine is shared, so compare ratios).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from curate_testing.inspect_data import write_output, write_run_files  # noqa: E402

CURATE = [sys.executable, "-m", "curate.pipeline.cli"]


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, peak RSS MiB, stdout bytes) of a child process (fresh: RUSAGE_CHILDREN max is per child)."""
    code = (
        "import resource,subprocess,sys,time;t=time.time();p=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE);"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;print(time.time()-t,r/1024,len(p.stdout),p.returncode)"
    )
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True).stdout.split()
    if out[3] not in ("0",):
        raise SystemExit(f"{' '.join(cmd)} exited {out[3]}")
    return float(out[0]), float(out[1]), int(out[2])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--keep", help="write the output here and keep it")
    a = ap.parse_args()
    out = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="curate-bench-diff-")) / "out"
    if not (out / "data").is_dir():
        t = time.time()
        counts = write_output(out, a.docs)
        write_run_files(out, counts)
        print(f"built {a.docs:,} docs in {time.time() - t:.1f} s: {counts}")
    size = sum(f.stat().st_size for f in out.rglob("*.parquet")) / 2**20
    print(f"output: {out} ({size:.0f} MiB of Parquet)")
    load = "import pyarrow.parquet as pq,sys;t=pq.read_table(sys.argv[1]+'/data');print(t.num_rows)"
    rows = [
        ("baseline: pyarrow read_table(data/) whole", [sys.executable, "-c", load, str(out)]),
        ("floor: curate diff --help (imports only)", CURATE + ["diff", "--help"]),
    ]
    for name, extra in (
        ("diff (default: 20, changed ones first)", []),
        ("diff --status edited --limit 5", ["--status", "edited", "--limit", "5"]),
        ("diff --id (last document)", ["--id", f"doc-{a.docs - 1:06d}"]),
        ("diff --grep 'Quartz' --limit 20", ["--grep", "Quartz", "--limit", "20"]),
        ("diff --sample 20 --seed 1 (all docs)", ["--sample", "20", "--seed", "1"]),
        ("diff --status errors --sample 10", ["--status", "errors", "--sample", "10"]),
        ("diff --html (200 per status)", ["--html", str(out.parent / "diff.html")]),
    ):
        rows.append((name, CURATE + ["diff", str(out), *extra]))
    rows.append(("report", CURATE + ["report", str(out), "--html", str(out.parent / "report.html")]))
    base_rss = None
    print(f"{'command':45s} {'wall s':>8s} {'peak RSS MiB':>13s} {'x baseline':>10s}")
    for name, cmd in rows:
        wall, rss, _ = measure(cmd)
        base_rss = base_rss or rss
        print(f"{name:45s} {wall:8.2f} {rss:13.0f} {rss / base_rss:10.2f}")
    if not a.keep:
        shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
