"""Build output folders in the layout `curate run` writes, with ProX columns per the refiner's contract.

Used by the inspect tests (selection, diff replay, HTML) and by `scripts/bench/bench_diff.py`
(a 100k-document output). The texts are real web documents from the bundled sample; the edits
are made by a tiny independent executor (normalize per line, then remove original line ranges),
which is the contract the refiner's executor follows.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate_testing import REPO

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source_file", pa.string()),
        ("source_record", pa.int64()),
        ("url", pa.string()),
        ("ft_dclm", pa.float32()),
        ("eflaw", pa.float32()),
        ("tokens_per_char", pa.float32()),
        ("prox_status", pa.string()),
        ("prox_doc_program", pa.string()),
        ("prox_chunk_programs", pa.list_(pa.string())),
        ("prox_errors", pa.list_(pa.string())),
        ("prox_edits", pa.string()),
        ("prox_original_text", pa.string()),
    ]
)
REJECTED = SCHEMA.append(pa.field("drop_stage", pa.string())).append(pa.field("drop_reason", pa.string()))


def sample_texts(limit: int = 400) -> list[str]:
    texts = []
    for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            for line in fh:
                t = json.loads(line).get("text") or ""
                if t.count("\n") >= 4 and len(t.split()) > 60:
                    texts.append(t)
                if len(texts) >= limit:
                    return texts
    return texts


def execute(text: str, edits: list[dict[str, Any]]) -> str:
    """The oracle: normalizations over each line in order, then removal of original line ranges."""
    lines = text.split("\n")
    for e in edits:
        if e["op"] == "normalize":
            lines = [ln.replace(e["source"], e["target"]) for ln in lines]
    gone = {i for e in edits if e["op"] == "remove_lines" for i in range(e["line_start"], e["line_end"] + 1)}
    return "\n".join(ln for i, ln in enumerate(lines) if i not in gone)


def make_edits(text: str, rng: random.Random) -> list[dict[str, Any]]:
    lines = text.split("\n")
    edits: list[dict[str, Any]] = []
    words = [w for w in text.split() if len(w) >= 4 and w.isalpha()]
    if words:
        src = rng.choice(words)
        n = sum(ln.count(src) for ln in lines)
        tgt = src.upper()
        edits.append(
            {
                "call": f'normalize(source_str="{src}", target_str="{tgt}")',
                "op": "normalize",
                "source": src,
                "target": tgt,
                "count": n,
            }
        )
    short = [i for i, ln in enumerate(lines) if len(ln.split()) < 6]
    for i in sorted(rng.sample(short, min(2, len(short)))):
        j = min(i + rng.randint(0, 1), len(lines) - 1)
        if any(e["op"] == "remove_lines" and e["line_end"] >= i for e in edits):
            continue
        edits.append(
            {
                "call": f"remove_lines(line_start={i}, line_end={j})",
                "op": "remove_lines",
                "line_start": i,
                "line_end": j,
            }
        )
    return edits


STATUS_MIX = (
    ("kept", 40),
    ("edited", 25),
    ("program_ignored", 10),
    ("dropped_by_doc", 10),
    ("dropped_by_chunk", 5),
    ("too_few_words", 10),
)


def make_rows(n: int, seed: int = 0, texts: list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) pairs; where is "data", "prox_refine" or "length_filter"."""
    rng = random.Random(seed)
    texts = texts or sample_texts()
    pool = [s for s, w in STATUS_MIX for _ in range(w)]
    for k in range(n):
        text = texts[k % len(texts)]
        status = pool[rng.randrange(len(pool))]
        row: dict[str, Any] = {
            "id": f"doc-{k:06d}",
            "text": text,
            "source_file": f"shard-{k // 50000:02d}.jsonl.gz",
            # some URLs are long and unbreakable, as real ones are: the page must wrap them, not overflow
            "source_record": k % 50000,
            "url": f"https://example.org/{k}/" + "-".join(["a-long-path-segment"] * (k % 9)),
            "ft_dclm": rng.betavariate(0.6, 3),
            "eflaw": rng.gauss(30, 12),
            "tokens_per_char": rng.gauss(0.25, 0.03),
            "prox_status": None,
            "prox_doc_program": None,
            "prox_chunk_programs": None,
            "prox_errors": None,
            "prox_edits": None,
            "prox_original_text": None,
        }
        if status == "too_few_words":
            row.update(drop_stage="length_filter", drop_reason="too_few_words")
            yield "length_filter", row
            continue
        row.update(prox_status=status, prox_doc_program="keep_doc()", prox_errors=[], prox_edits="[]")
        if status == "dropped_by_doc":
            row.update(prox_doc_program="drop_doc()", drop_stage="prox_refine", drop_reason="dropped_by_doc")
            yield "prox_refine", row
            continue
        if status == "program_ignored":
            row.update(
                prox_chunk_programs=["remove_lines(line_start=x)\nnormalize(source_str='a')"],
                prox_errors=[
                    "remove_lines(line_start=x): bad argument",
                    "normalize(source_str='a'): missing target_str",
                ],
            )
            yield "data", row
            continue
        if status == "kept":
            row.update(prox_chunk_programs=["keep_chunk()"])
            yield "data", row
            continue
        edits = make_edits(text, rng)
        if status == "dropped_by_chunk":
            last = len(text.split("\n")) - 1
            edits = [
                {
                    "call": f"remove_lines(line_start=0, line_end={last})",
                    "op": "remove_lines",
                    "line_start": 0,
                    "line_end": last,
                }
            ]
        row.update(prox_chunk_programs=["\n".join(e["call"] for e in edits)], prox_edits=json.dumps(edits))
        if status == "dropped_by_chunk":
            row.update(drop_stage="prox_refine", drop_reason="dropped_by_chunk")
            yield "prox_refine", row
            continue
        new = execute(text, edits)
        if new == text:
            row.update(prox_status="kept")
        else:
            row.update(text=new, prox_original_text=text)
        yield "data", row


def write_output(
    out: Path,
    n: int,
    seed: int = 0,
    rows_per_group: int = 1000,
    docs_per_file: int = 25_000,
    texts: list[str] | None = None,
) -> dict[str, int]:
    """Write OUT/data/NNNNN.parquet and OUT/rejected/STAGE/NNNNN.parquet; returns docs per status."""
    writers: dict[str, pq.ParquetWriter] = {}
    buffers: dict[str, list[dict]] = {}
    files: dict[str, int] = {}
    written: dict[str, int] = {}
    counts: dict[str, int] = {}

    def flush(where: str) -> None:
        rows = buffers.pop(where, [])
        if not rows:
            return
        schema = SCHEMA if where == "data" else REJECTED
        if where not in writers:
            folder = out / "data" if where == "data" else out / "rejected" / where
            folder.mkdir(parents=True, exist_ok=True)
            writers[where] = pq.ParquetWriter(folder / f"{files.get(where, 0):05d}.parquet", schema, compression="zstd")
        writers[where].write_table(pa.Table.from_pylist(rows, schema=schema), row_group_size=rows_per_group)
        written[where] = written.get(where, 0) + len(rows)
        if written[where] >= docs_per_file:
            writers.pop(where).close()
            files[where] = files.get(where, 0) + 1
            written[where] = 0

    for where, row in make_rows(n, seed, texts):
        key = row["prox_status"] or "dropped"
        counts[key] = counts.get(key, 0) + 1
        buffers.setdefault(where, []).append(row)
        if len(buffers[where]) >= rows_per_group:
            flush(where)
    for where in list(buffers):
        flush(where)
    for w in writers.values():
        w.close()
    return counts


def write_empty_output(out: Path, n_input: int, keep_rejected: bool = False) -> None:
    """The output of a run that dropped all `n_input` documents: data/00000.parquet with the full
    schema and no rows (rejected/ stays absent unless keep_rejected), and its run files."""
    (out / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(SCHEMA.empty_table(), out / "data" / "00000.parquet")
    write_run_files(out, {"dropped": n_input})
    run = json.loads((out / "_curate_run.json").read_text())
    run["decisive"]["output"]["keep_rejected"] = keep_rejected
    (out / "_curate_run.json").write_text(json.dumps(run, indent=2))


def write_run_files(out: Path, counts: dict[str, int]) -> None:
    """A stats.json and _curate_run.json consistent with `counts` (as write_output returned them)."""
    total = sum(counts.values())
    after_len = total - counts.get("dropped", 0)
    prox_drop = {k: counts.get(k, 0) for k in ("dropped_by_doc", "dropped_by_chunk") if counts.get(k)}
    kept = after_len - sum(prox_drop.values())

    def st(label: str, i: int, o: int, dropped: dict[str, int], plumbing: bool = False) -> dict[str, Any]:
        return {
            "label": label,
            "job": "main",
            "plumbing": plumbing,
            "docs_in": i,
            "docs_out": o,
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "chars_in": i * 3000,
            "chars_out": o * 2900,
            "conserved": i == o + sum(dropped.values()),
            "time_s": 0.1,
            "extra": {},
        }

    stats = {
        "run": "inspect-fixture",
        "complete": True,
        "jobs": [{"name": "main", "tasks": 1, "tasks_completed": 1}],
        "stages": [
            st("read", total, total, {}),
            st("length_filter", total, after_len, {"too_few_words": counts.get("dropped", 0)}),
            st("prox_refine", after_len, kept, prox_drop),
            st("write", kept, kept, {}, True),
        ],
        "conserved": True,
        "input_records": total,
        "output_docs": kept,
    }
    run = {
        "fingerprint": "x",
        "decisive": {
            "input": {"format": "jsonl", "path": "data/sample"},
            "output": {"path": str(out), "keep_rejected": True},
            "tasks": 1,
            "on_error": "skip",
            "stages": [
                {"stage": "length_filter", "min_words": 5},
                {
                    "stage": "quality_rule",
                    "keep": "FT and READ",
                    "clauses": {"FT": "ft_dclm > dclm_min", "READ": "eflaw < 30 and 0.22 <= tokens_per_char <= 0.28"},
                    "params": {"dclm_min": 0.002},
                },
                {"stage": "prox_refine", "backend": "boilerplate"},
            ],
        },
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    (out / "_curate_run.json").write_text(json.dumps(run, indent=2))


# -- ProX programs over short texts: the cases two property tests share (tests/pipeline/inspect/) -----------
def program_strategies() -> tuple[Any, Any]:
    """(lines, ops): a text's lines, and remove_lines / normalize calls over them (hypothesis strategies)."""
    from hypothesis import strategies as st

    lines = st.lists(st.text(alphabet="ab .\u00a9", max_size=14), min_size=1, max_size=10)
    ops = st.lists(
        st.tuples(
            st.sampled_from(["rm", "norm"]),
            st.integers(0, 12),
            st.integers(0, 3),
            st.sampled_from(["a", "b ", ".", "ab", "\u00a9"]),
            st.sampled_from(["", "X", "(c)"]),
        ),
        max_size=4,
    )
    return lines, ops


def apply_ops(lines: list[str], ops: list[tuple]) -> tuple[str, Any]:
    """The text of `lines` and the executor's outcome of the program `ops` spell (no drop thresholds)."""
    from curate.refiners.apply import DecisionLimits, apply_chunk_programs
    from curate.refiners.program import parse_program

    text = "\n".join(lines)
    prog = "\n".join(
        f"remove_lines(line_start={a}, line_end={a + k})"
        if kind == "rm"
        else f"normalize(source_str={json.dumps(src)}, target_str={json.dumps(dst)})"
        for kind, a, k, src, dst in ops
    )
    return text, apply_chunk_programs(
        text, [parse_program(prog)], DecisionLimits(min_words_kept=0, min_fraction_kept=0.0)
    )
