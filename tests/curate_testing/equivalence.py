"""The equivalence matrix's corpus, config and dataset snapshot (tests/pipeline/test_equivalence.py).

The corpus is real web text (the bundled C4 sample) with planted copies, so that every dedup stage
really drops or cuts: exact copies of documents in other files (exact_doc_dedup), copies with a few
words changed (minhash_dedup), and one long paragraph appended to several documents of a file
(exact_substring_dedup cuts it from all but the first). It also holds a 0-byte file and an empty
gzip file: empty is a normal case.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from . import REPO, SAMPLE

MODELS = REPO / "filters" / "assets" / "models"
FILES = 4
DOCS_PER_FILE = 45


def _c4_docs(n: int) -> list[dict]:
    docs = []
    with gzip.open(SAMPLE / "c4-en-1k.jsonl.gz", "rt") as f:
        for line in f:
            d = json.loads(line)
            if len(d["text"].split()) >= 60:
                docs.append({"id": d.get("id") or f"c4-{len(docs)}", "text": d["text"], "url": d.get("url")})
            if len(docs) == n:
                break
    return docs


def build_corpus(folder: Path, seed: int = 0) -> Path:
    """FILES jsonl files of real text with planted exact copies, near copies and a repeated paragraph."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    docs = _c4_docs(FILES * DOCS_PER_FILE + 40)
    spare, docs = docs[-40:], docs[:-40]
    files = [docs[i * DOCS_PER_FILE : (i + 1) * DOCS_PER_FILE] for i in range(FILES)]
    paragraph = " ".join(spare[0]["text"].split()[:150])
    for i in rng.choice(DOCS_PER_FILE, 5, replace=False):  # ESD: in one file, 5 docs share it
        d = files[1][int(i)]
        files[1][int(i)] = {**d, "text": d["text"] + "\n" + paragraph}
    for k in range(6):  # exact copies of file 0's documents in later files
        src = files[0][3 * k]
        files[1 + k % 3].insert(int(rng.integers(0, DOCS_PER_FILE)), {**src, "id": f"copy-{k}"})
    for k in range(6):  # near copies: 2 words changed in a long document
        src = spare[1 + k]
        words = src["text"].split(" ")
        for j in rng.choice(len(words), 2, replace=False):
            words[int(j)] = "zzyzx"
        files[k % FILES].append(src)
        files[(k + 1) % FILES].append({**src, "id": f"near-{k}", "text": " ".join(words)})
    for i, rows in enumerate(files):
        with open(folder / f"part-{i}.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    (folder / "part-9-empty.jsonl").write_bytes(b"")  # 0 bytes
    with gzip.open(folder / "part-8-nothing.jsonl.gz", "wb"):  # a valid gzip holding nothing
        pass
    return folder


def stages() -> list[dict[str, Any]]:
    """Every built-in stage kind that runs here without a model download."""
    return [
        {"stage": "length_filter", "min_words": 20},
        {"stage": "exact_doc_dedup"},
        {"stage": "exact_substring_dedup", "min_length": 50},
        {"stage": "minhash_dedup"},
        {
            "stage": "gneissweb_ensemble",
            "quality_models": [
                {"name": "dclm", "path": str(MODELS / "quality_dclm.ftz"), "preprocess": "dclm"},
                {"name": "cosmo", "path": str(MODELS / "quality_cosmo.ftz"), "preprocess": "newlines"},
            ],
            "category_models": [
                {"name": n, "path": str(MODELS / f"category_{n}.ftz")}
                for n in ("medical", "education", "technology", "science")
            ],
            "tokenizer": str(REPO / "dedup" / "assets" / "gpt2" / "tokenizer.json"),
        },
        {"stage": "prox_refine", "backend": "boilerplate"},
    ]


def config(inp: Path, out: Path, tasks: int = 2, kind: str = "local", **executor: Any) -> dict[str, Any]:
    return {
        "name": "equivalence",
        "input": {"format": "jsonl", "path": str(inp)},
        "output": {"path": str(out), "keep_rejected": True, "metadata_columns": ["url"]},
        "executor": {"kind": kind, "tasks": tasks, "workers": min(tasks, 2), **executor},
        "stages": stages(),
    }


def _rows(folder: Path) -> list[str]:
    rows = []
    for f in sorted(folder.rglob("[0-9]*.parquet")):
        t = pq.read_table(f)
        for r in t.to_pylist():
            rows.append(json.dumps({"__file_folder": f.parent.name, **r}, sort_keys=True, default=str))
    return sorted(rows)


def snapshot(out: Path) -> dict[str, Any]:
    """What must not depend on the path taken: data/ and rejected/ rows (every column, as a multiset), the
    data/ schema, and per-stage counts in stats.json."""
    stats = json.loads((out / "stats.json").read_text())
    keys = ("docs_in", "docs_out", "dropped", "chars_in", "chars_out", "conserved")
    counts = {s["label"]: {k: s.get(k) for k in keys} for s in stats["stages"]}
    schema = None
    files = sorted((out / "data").glob("[0-9]*.parquet"))
    if files:
        schema = [(f.name, str(f.type)) for f in pq.read_schema(files[0])]
    return {
        "data": _rows(out / "data"),
        "rejected": _rows(out / "rejected") if (out / "rejected").is_dir() else [],
        "schema": schema,
        "counts": counts,
    }
