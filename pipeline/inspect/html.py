"""`curate diff --html FILE`: one self-contained page (inline CSS and JS, data embedded as JSON).

The page needs nothing from the network and opens from disk. Diffs are computed here, in Python,
with the same code as the terminal view (`hunks`), and embedded as rows of segments; the
page's script only lays them out (side by side or inline), filters and searches. Document text
reaches the DOM through `textContent` only, never as HTML.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from typing import Any

from curate.core.atomic import write_file_atomic

from .hunks import doc_diff, parse_edits
from .select import Record, status_counts

TEMPLATE = "diff.html"


def record_json(r: Record) -> dict[str, Any]:
    d = doc_diff(r.text, r.original_text, r.edits, dropped=r.where == "rejected", recorded=r.stage_edits)
    return {
        "id": r.id,
        "status": r.status,
        "where": r.where,
        "source": r.source,
        "url": r.extra.get("url") if isinstance(r.extra.get("url"), str) else None,
        "drop_stage": r.drop_stage if r.where == "rejected" else None,
        "drop_reason": r.drop_reason,
        "errors": r.errors,
        "doc_program": r.doc_program,
        "chunk_programs": r.chunk_programs,
        "edits": parse_edits(r.edits),
        # stage -> spans it changed (the edits column); the rows' labels name the stage of each change
        "stages": d.stages,
        "n_edits": len(d.edits),
        "lines_removed": d.lines_removed,
        "rows_normalized": d.rows_normalized,
        "diff": d.to_json(),
        "annotations": r.annotations,
    }


def _embed(obj: Any) -> str:
    # inside <script>: no "</script>", "<!--" or "&" can appear; the \u escapes are still valid JSON
    return json.dumps(obj, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(docs: list[dict[str, Any]], totals: dict[str, int], title: str, empty: str = "") -> str:
    """The page; `empty` is the line it shows when the whole output holds no documents."""
    tpl = resources.files("curate.pipeline.inspect").joinpath("assets", TEMPLATE).read_text(encoding="utf-8")
    esc = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return tpl.replace("__CURATE_TITLE__", f"curate diff — {esc}").replace(
        "__CURATE_DATA__", _embed({"title": title, "totals": totals, "docs": docs, "empty": empty})
    )


def write_html(output: str, records: Iterable[Record], path: str, selection_note: str = "", empty: str = "") -> int:
    """Write the page for the selected records; returns how many documents it holds."""
    docs = [record_json(r) for r in records]
    totals = status_counts(output)
    title = f"{output.rstrip('/')} · {len(docs)} document(s) selected ({selection_note or 'all'})"
    html = render_html(docs, totals, title, empty)
    write_file_atomic(path, html)
    return len(docs)
