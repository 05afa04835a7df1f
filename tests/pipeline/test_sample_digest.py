"""The sample run's kept rows are the same as the stored digest: a refactor must not change what is kept.

The digest was taken from configs/sample.yaml's output at commit 1eb3efe (before the one-module-per-stage
redesign of issue 12). When a change is meant to alter the kept rows (a new default, a fixed bug), update
DIGEST in the same commit and say why in its message.
"""

from __future__ import annotations

import hashlib

import pyarrow.parquet as pq

# sha256 over the kept rows sorted by id: id, NUL, text, NUL for each row; and the row count
KEPT_ROWS = 1204
DIGEST = "27c66c3b4c9ccbe4d7f1be1f162e127efe54440920555c1c29f98910e36f7f33"


def kept_digest(out) -> tuple[int, str]:
    rows = []
    for f in sorted((out / "data").rglob("*.parquet")):
        t = pq.read_table(f, columns=["id", "text"])
        rows += zip(t.column("id").to_pylist(), t.column("text").to_pylist())
    rows.sort()
    h = hashlib.sha256()
    for doc_id, text in rows:
        h.update(doc_id.encode() + b"\0" + text.encode("utf-8", "surrogatepass") + b"\0")
    return len(rows), h.hexdigest()


def test_sample_kept_rows_match_the_stored_digest(sample_run):
    out, stats = sample_run
    n, digest = kept_digest(out)
    assert n == KEPT_ROWS, f"the sample run keeps {n} rows, the stored digest {KEPT_ROWS}"
    assert digest == DIGEST
