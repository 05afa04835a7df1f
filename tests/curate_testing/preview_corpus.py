"""A corpus for the preview's accuracy check (tests/pipeline/test_preview.py, scripts/bench/preview.py).

Real web text (the bundled C4 and Dolma samples, tests/data's C4 excerpts) with planted duplicate
clusters: exact copies of a few documents (exact_doc_dedup) and copies with a few words changed in each
(minhash_dedup). Clusters, not pairs: a 5 % sample holds a planted pair with probability 0.25 %, so no
sample-based estimate can see pairs (the preview reports a wide range then); clusters of `copies`
documents are what web dumps repeat most (boilerplate pages, mirrors). Written as uncompressed JSON
Lines files, so the preview reads byte ranges.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from . import DATA, SAMPLE
from .equivalence import stages as equivalence_stages


def _texts() -> list[str]:
    out = []
    for name in ("c4-en-1k.jsonl.gz", "dolma-cc-2019-00140.jsonl.gz"):
        with gzip.open(SAMPLE / name, "rt") as f:
            out += [json.loads(line)["text"] for line in f]
    with open(DATA / "c4-prefix-completion-1480" / "c4.jsonl") as f:
        out += [(r := json.loads(line))["prefix"] + r["gold_completion"] for line in f]
    return [t for t in out if t.strip()]


def build_corpus(folder: Path, docs: int = 2000, clusters: int = 6, copies: int = 25, seed: int = 0) -> Path:
    """`docs` documents in 8 files: unique texts plus `clusters` exact and `clusters` near-duplicate clusters
    of `copies` documents each."""
    rng = np.random.default_rng(seed)
    texts = _texts()
    rng.shuffle(texts)
    planted = 2 * clusters * copies
    unique, spare = texts[: docs - planted], texts[docs - planted :]
    rows: list[dict[str, Any]] = [{"id": f"u{i}", "text": t} for i, t in enumerate(unique)]
    long_spare = [t for t in spare if len(t.split()) >= 80]
    for c in range(clusters):
        rows += [{"id": f"exact{c}-{j}", "text": long_spare[c]} for j in range(copies)]
        words = long_spare[clusters + c].split(" ")
        for j in range(copies):
            w = list(words)
            for i in rng.choice(len(w), 2, replace=False):
                w[int(i)] = f"zq{j}x"
            rows.append({"id": f"near{c}-{j}", "text": " ".join(w)})
    order = rng.permutation(len(rows))
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(8):
        with open(folder / f"part-{k}.jsonl", "w") as f:
            for i in order[k::8]:
                f.write(json.dumps(rows[int(i)]) + "\n")
    return folder


def config(inp: Path, out: Path) -> dict[str, Any]:
    """length_filter, exact_doc_dedup, minhash_dedup and gneissweb_ensemble (the equivalence matrix's entries)."""
    wanted = ("length_filter", "exact_doc_dedup", "minhash_dedup", "gneissweb_ensemble")
    return {
        "name": "preview-accuracy",
        "input": {"format": "jsonl", "path": str(inp)},
        "output": {"path": str(out)},
        "executor": {"kind": "local", "tasks": 1, "workers": 1},
        "stages": [s for s in equivalence_stages() if s["stage"] in wanted],
    }
