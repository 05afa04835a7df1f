"""The preview's HTML page: the per-stage table, the projection, and examples of each stage's drops and
of ProX's edits.

Drops come from the preview run's `rejected/STAGE/` folders (the preview keeps rejected documents), edits
from its data/ rows whose ProX status is `edited` (a line diff of the text before and after); one
self-contained file, no scripts.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

EXAMPLES = 3
SNIPPET = 600


def _examples(out_dir: str) -> dict[str, list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    found: dict[str, list[dict[str, Any]]] = {}
    for folder in sorted((Path(out_dir) / "rejected").glob("*")):
        rows: list[dict[str, Any]] = []
        for f in sorted(folder.glob("[0-9]*.parquet")):
            cols = [c for c in ("id", "text", "drop_reason") if c in pq.read_schema(f).names]
            rows += pq.read_table(f, columns=cols).slice(0, EXAMPLES - len(rows)).to_pylist()
            if len(rows) >= EXAMPLES:
                break
        found[folder.name] = rows
    return found


def _edits(out_dir: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    from curate.refiners.columns import EDITED, ORIGINAL_TEXT, STATUS

    found: list[dict[str, Any]] = []
    for f in sorted((Path(out_dir) / "data").glob("[0-9]*.parquet")):
        if not {STATUS, ORIGINAL_TEXT} <= set(pq.read_schema(f).names):
            return []
        for r in pq.read_table(f, columns=["id", "text", STATUS, ORIGINAL_TEXT]).to_pylist():
            if r[STATUS] == EDITED and len(found) < EXAMPLES:
                found.append({"id": r["id"], "before": r[ORIGINAL_TEXT] or "", "after": r["text"] or ""})
    return found


def _diff(before: str, after: str) -> str:
    import difflib

    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=1)
    return "\n".join(list(lines)[:40])


def render(result: dict[str, Any], out_dir: str) -> str:
    e = html.escape
    examples = _examples(out_dir)
    edits = "".join(
        f"<li><b>{e(str(d['id']))}</b><pre>{e(_diff(d['before'], d['after']))}</pre></li>" for d in _edits(out_dir)
    )
    rows = []
    for row in result["stages"]:
        s, p = row["sample"], row["projected"]
        reasons = ", ".join(f"{e(k)} {v:,}" for k, v in s["dropped"].items())
        rows.append(
            f"<tr><td>{e(row['label'])}</td><td>{s['docs_in']:,}</td><td>{s['docs_out']:,}</td>"
            f"<td>{s['chars_in']:,}</td><td>{s['chars_out']:,}</td><td>{reasons}</td>"
            f"<td>{p['docs_in']:,.0f}</td><td>{p['docs_out']:,.0f}</td><td>{p['cpu_core_hours']:,.3f}</td>"
            f"<td>{e(p['basis'])}</td></tr>"
        )
    drops = []
    for stage, docs in examples.items():
        items = "".join(
            f"<li><b>{e(str(d.get('id')))}</b> <i>{e(str(d.get('drop_reason') or ''))}</i>"
            f"<pre>{e(str(d.get('text') or '')[:SNIPPET])}</pre></li>"
            for d in docs
        )
        drops.append(f"<h3>{e(stage)}</h3><ul>{items or '<li>none</li>'}</ul>")
    s = result["sample"]
    estimates = "".join(f"<li>{e(x)}</li>" for x in result["estimates"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>curate preview: {e(result["name"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px}}
table{{border-collapse:collapse}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:6px}}</style></head><body>
<h1>preview of {e(result["name"])}</h1>
<p>{s["docs"]:,} documents ({e(s["method"])}), seed {result["seed"]}; full input ~{result["full"]["docs_estimated"]:,}
documents, {result["full"]["input_bytes"]:,} bytes; ~{result["kept_docs"]:,} kept; wall ~{result["wall"]["wall_hours"]:,.2f} h
on {e(result["wall"]["executor"])}.</p>
<table><tr><th>stage</th><th>sample in</th><th>out</th><th>chars in</th><th>chars out</th><th>top drops</th>
<th>full in</th><th>full out</th><th>CPU core-h</th><th>basis</th></tr>{"".join(rows)}</table>
<ul>{estimates}</ul><h2>examples of drops</h2>{"".join(drops)}
<h2>examples of edits (ProX)</h2><ul>{edits or "<li>none</li>"}</ul></body></html>
"""


def write_page(path: str, result: dict[str, Any], out_dir: str) -> str:
    Path(path).write_text(render(result, out_dir), encoding="utf-8")
    return path
