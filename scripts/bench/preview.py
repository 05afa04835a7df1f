"""How close `curate preview` comes to the full run: kept documents and CPU-seconds per stage, per seed.

    python scripts/bench/preview.py [--docs 2000] [--sample 100] [--seeds 0 1 2 3 4]

Builds the accuracy corpus of tests/pipeline/test_preview.py (real web text, planted exact and near
duplicate clusters; tests/curate_testing/preview_corpus.py), runs the config once for real and the
preview once per seed, each in a fresh process (a model loaded by one run is not warm for the next),
and prints projected vs measured: kept fraction of each stage, documents kept overall, and CPU-seconds
per stage (the full run's measured step time, one task on one core, vs the preview's projection).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from curate_testing.preview_corpus import build_corpus, config  # noqa: E402

CURATE = [sys.executable, "-m", "curate.pipeline.cli"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-preview-"))
    inp = build_corpus(root / "in", docs=args.docs)
    cfg = root / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(inp, root / "out")))
    subprocess.run([*CURATE, "run", str(cfg), "--no-progress"], check=True, capture_output=True)
    stats = json.loads((root / "out" / "stats.json").read_text())
    full = {s["label"]: s for s in stats["stages"]}
    print(f"corpus {args.docs} docs, sample {args.sample}; full run keeps {stats['output_docs']}")
    for seed in args.seeds:
        out = subprocess.run(
            [*CURATE, "preview", str(cfg), "--docs", str(args.sample), "--seed", str(seed), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out)
        print(
            f"seed {seed}: kept {r['kept_docs']} vs {stats['output_docs']} ({r['kept_docs'] / stats['output_docs'] - 1:+.1%})"
        )
        for row in r["stages"]:
            p, f = row["projected"], full[row["label"]]
            keep_p = p["docs_out"] / p["docs_in"] if p["docs_in"] else 1.0
            keep_f = f["docs_out"] / f["docs_in"] if f["docs_in"] else 1.0
            cpu = f"{p['cpu_s']:7.2f} vs {f['time_s']:6.2f} s" + (
                f" ({p['cpu_s'] / f['time_s'] - 1:+.0%})" if f["time_s"] >= 0.05 else ""
            )
            print(f"  {row['label']:22s} keep {keep_p:.3f} vs {keep_f:.3f} ({keep_p / keep_f - 1:+.1%})  cpu {cpu}")


if __name__ == "__main__":
    main()
