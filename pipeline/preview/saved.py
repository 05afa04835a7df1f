"""A preview saved beside its run (WORK/preview.json), and what `curate plan` prints of it."""

from __future__ import annotations

import json
from typing import Any

PREVIEW_FILE = "preview.json"


def saved_preview(work_dir: str, fingerprint: str) -> dict[str, Any] | None:
    """The preview saved for this config (same fingerprint), if any: `curate plan` shows it."""
    from datatrove.io import get_datafolder

    folder = get_datafolder(work_dir)
    try:
        if not folder.isfile(PREVIEW_FILE):
            return None
        with folder.open(PREVIEW_FILE, "rt") as f:
            r = json.load(f)
    except (OSError, ValueError):
        return None
    return r if r.get("fingerprint") == fingerprint else None


def preview_lines(r: dict[str, Any]) -> list[str]:
    """What `curate plan` prints of a saved preview."""
    lines = [
        f"preview ({r['sample']['docs']:,} documents, seed {r['seed']}): ~{r['full']['docs_estimated']:,} input "
        f"documents -> ~{r['kept_docs']:,} kept; ~{r['wall']['wall_hours']:,.2f} h on {r['wall']['executor']}"
    ]
    for row in r["stages"]:
        p = row["projected"]
        lines.append(
            f"  {row['label']}: {p['docs_in']:,.0f} -> {p['docs_out']:,.0f} docs, {p['cpu_core_hours']:,.3f} CPU core-h ({p['basis']})"
        )
    return lines
