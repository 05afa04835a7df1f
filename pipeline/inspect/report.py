"""`curate report OUTPUT`: one self-contained HTML page about a run, charts embedded as PNG.

Built from `stats.json` (funnel, drop reasons), `_curate_run.json` (thresholds of the rules, see
thresholds.py) and the Parquet output (annotation histograms, refinement statuses). The Parquet
files are read one row group at a time and only their float columns (and the ProX status), so
the report of a large output costs the float columns' values in memory, not the documents.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from curate.core.atomic import write_file_atomic
from curate.core.errors import CurateError
from curate.refiners import columns as prox

from .select import DROPPED, STATUSES, classify, empty_note, open_parquet, output_files, read_run_info
from .thresholds import Threshold, run_thresholds

STAGE_COLORS = [
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
]
STATUS_COLORS = {
    prox.KEPT: "#2f8f4e",
    prox.EDITED: "#c7821a",
    prox.IGNORED: "#8e44ad",
    prox.DROPPED_BY_DOC: "#c0392b",
    prox.DROPPED_BY_CHUNK: "#e67e73",
    DROPPED: "#7f8c8d",
}
# a float column with more values than this is subsampled (every k-th row group value) for its histogram
MAX_VALUES = 5_000_000
DPI = 110  # figures are laid out and saved at this dpi (threshold labels are placed in measured pixels)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "font.family": "DejaVu Sans"}
    )
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _si_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    def f(x: float, _pos: int) -> str:
        for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(x) >= div:
                return f"{x / div:g}{suf}"
        return f"{x:g}"

    return FuncFormatter(f)


def accounted_stages(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The stages of the funnel: every accounted stage except plumbing (the final write is kept)."""
    return [s for s in stats.get("stages", []) if "docs_in" in s and (not s.get("plumbing") or s["label"] == "write")]


def funnel_chart(stages: list[dict[str, Any]]) -> str:
    plt = _plt()
    labels = ["input"] + [s["label"] for s in stages]
    docs = [stages[0]["docs_in"]] + [s["docs_out"] for s in stages]
    chars = [stages[0]["chars_in"]] + [s["chars_out"] for s in stages]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(labels) + 1.2))
    for ax, vals, what in ((axes[0], docs, "documents"), (axes[1], chars, "characters")):
        y = np.arange(len(labels))[::-1]
        ax.barh(y, vals, color=["#9aa0a6"] + [STAGE_COLORS[i % len(STAGE_COLORS)] for i in range(len(stages))])
        ax.set_yticks(y, labels)
        ax.set_title(f"{what} after each stage")
        top = max(vals) or 1
        for yi, v in zip(y, vals):
            ax.text(v + top * 0.01, yi, f"{v:,} ({v / top:.1%})" if top else f"{v:,}", va="center", fontsize=8)
        ax.set_xlim(0, top * 1.35)
        ax.xaxis.set_major_formatter(_si_formatter())
    fig.tight_layout()
    return _png(fig)


def drops_chart(stages: list[dict[str, Any]], top: int = 30) -> str | None:
    rows = [(s["label"], r, n, i) for i, s in enumerate(stages) for r, n in s.get("dropped", {}).items() if n]
    if not rows:
        return None
    rows.sort(key=lambda r: (r[3], -r[2]))
    rows = rows[:top]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, [r[2] for r in rows], color=[STAGE_COLORS[r[3] % len(STAGE_COLORS)] for r in rows])
    ax.set_yticks(y, [f"{r[0]}: {r[1]}" for r in rows])
    m = max(r[2] for r in rows)
    for yi, r in zip(y, rows):
        ax.text(r[2] + m * 0.01, yi, f"{r[2]:,}", va="center", fontsize=8)
    ax.set_xlim(0, m * 1.15)
    ax.set_title("documents dropped, by stage and reason")
    fig.tight_layout()
    return _png(fig)


def status_chart(counts: dict[str, int]) -> str:
    plt = _plt()
    keys = [s for s in STATUSES if counts.get(s)]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(keys) + 1.0))
    y = np.arange(len(keys))[::-1]
    vals = [counts[k] for k in keys]
    ax.barh(y, vals, color=[STATUS_COLORS[k] for k in keys])
    ax.set_yticks(y, keys)
    ax.xaxis.set_major_formatter(_si_formatter())
    tot = sum(vals)
    for yi, v in zip(y, vals):
        ax.text(v + max(vals) * 0.01, yi, f"{v:,} ({v / tot:.1%})", va="center", fontsize=8)
    ax.set_xlim(0, max(vals) * 1.3)
    ax.set_title("documents by refinement status")
    fig.tight_layout()
    return _png(fig)


# one colour per guard, so the two sets of GneissWeb thresholds (CAT, NCAT) read apart; unguarded in red
GUARD_COLORS = ["#C44E52", "#8172B3", "#DD8452", "#55A868", "#937860", "#64B5CD"]
_OP_GLYPH = {"<=": "≤", ">=": "≥", "!=": "≠"}


def _glyphs(label: str) -> str:
    for op, g in _OP_GLYPH.items():
        label = label.replace(op, g)
    return label


def place_labels(
    ax: Any, items: list[tuple[float, str, str]], pad_px: float = 4.0
) -> list[tuple[float, float, float, float]]:
    """Draw each (x, text, colour) label at the top of `ax`, centred on x (shifted to stay inside the
    axes), in the first row from the top where it overlaps no label already placed. Returns each
    label's box (x0, y0, x1, y1) in axes fractions, in the order given. Call it after the figure's
    layout is final: boxes are measured in pixels at the current axes size."""
    import matplotlib.transforms as mtransforms

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    ax_box = ax.get_window_extent(renderer)
    blend = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    texts = [
        ax.text(
            x,
            1.0,
            text,
            transform=blend,
            ha="left",
            va="top",
            fontsize=7.5,
            color=color,
            zorder=5,
            bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
        )
        for x, text, color in items
    ]
    exts = [t.get_window_extent(renderer) for t in texts]
    h = max(e.height for e in exts) + pad_px  # one row height for all: rows never overlap vertically
    rows: list[list[tuple[float, float]]] = []
    boxes: list[tuple[float, float, float, float]] = []
    for (x, _, _), t, ext in zip(items, texts, exts):
        w = ext.width + 2 * pad_px
        cx = ax.transData.transform((x, 0))[0]
        left = min(max(cx - w / 2, ax_box.x0), ax_box.x1 - w)  # inside the axes horizontally
        row = next((k for k, spans in enumerate(rows) if all(left + w <= a or left >= b for a, b in spans)), len(rows))
        if row == len(rows):
            rows.append([])
        rows[row].append((left, left + w))
        top = ax_box.y1 - row * h
        # axes fractions: the rows do not move when ylim changes, and scale with the saved dpi
        t.set_transform(ax.transAxes)
        t.set_position(((left + pad_px - ax_box.x0) / ax_box.width, (top - pad_px / 2 - ax_box.y0) / ax_box.height))
        boxes.append(
            (
                (left - ax_box.x0) / ax_box.width,
                (top - h - ax_box.y0) / ax_box.height,
                (left + w - ax_box.x0) / ax_box.width,
                (top - ax_box.y0) / ax_box.height,
            )
        )
    return boxes


def guard_colors(thresholds: Iterable[Threshold]) -> dict[str, str]:
    """One colour per guard over the whole report: CAT thresholds have the same colour on every chart."""
    guards = sorted({t.when for t in thresholds})
    return {g: GUARD_COLORS[k % len(GUARD_COLORS)] for k, g in enumerate(guards)}


def histogram_chart(
    column: str,
    kept: np.ndarray,
    dropped: np.ndarray,
    thresholds: list[Threshold],
    bins: int,
    layout: dict[str, Any] | None = None,
    colors: dict[str, str] | None = None,
) -> str:
    """A stacked histogram (kept on dropped) with a dashed line and a label per threshold. Labels sit in
    rows above the bars (headroom is added for them); `layout`, when given, receives the label boxes
    and the bars' top in axes fractions (the tests check that nothing overlaps)."""
    return _png(histogram_figure(column, kept, dropped, thresholds, bins, layout, colors))


def histogram_figure(
    column: str,
    kept: np.ndarray,
    dropped: np.ndarray,
    thresholds: list[Threshold],
    bins: int,
    layout: dict[str, Any] | None = None,
    colors: dict[str, str] | None = None,
) -> Any:
    """The figure of `histogram_chart`, not yet saved."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.4, 3.3), dpi=DPI)
    allv = np.concatenate([kept, dropped])
    # long tails (EFLAW of a list page is in the hundreds) would squeeze the bulk into a few bins:
    # the axis spans the 0.5-99.5 percentiles, and values beyond are counted in the edge bins
    lo, hi = (float(x) for x in np.percentile(allv, [0.5, 99.5]))
    outside = int(np.count_nonzero((allv < lo) | (allv > hi)))
    for t in thresholds:  # keep every threshold in view
        lo, hi = min(lo, t.value), max(hi, t.value)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    kept, dropped = np.clip(kept, lo, hi), np.clip(dropped, lo, hi)
    counts, _, _ = ax.hist(
        [kept, dropped],
        bins=edges,
        stacked=True,
        color=["#4C72B0", "#C9C9D3"],
        label=[f"kept ({len(kept):,})", f"dropped ({len(dropped):,})"],
    )
    bar_top = float(np.max(counts[-1])) if len(counts) else 0.0
    ax.set_xlim(lo - (hi - lo) * 0.02, hi + (hi - lo) * 0.02)
    ax.set_title(column + (f"  ({outside:,} outliers in the edge bins)" if outside else ""), fontsize=9)
    # the legend goes under the axes: inside, it would collide with the threshold labels
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.tight_layout()
    color = colors or guard_colors(thresholds)
    # one label per (value, guard); several guards at one value share a line
    by_value: dict[float, list[Threshold]] = {}
    for t in sorted(thresholds, key=lambda t: (t.value, t.when)):
        if all((u.when, u.op) != (t.when, t.op) for u in by_value.get(t.value, [])):
            by_value.setdefault(t.value, []).append(t)
    items = [(v, _glyphs(t.label), color[t.when]) for v, ts in by_value.items() for t in ts]
    boxes = place_labels(ax, items) if items else []
    low = min((b[1] for b in boxes), default=1.0)
    # headroom: the highest bar ends 4% of the axes below the lowest label row
    frac = max(low - 0.04, 0.25)
    ax.set_ylim(0, max(bar_top, 1.0) / frac)
    for (v, _, c), b in zip(items, boxes):
        ax.axvline(v, ymax=b[1], color=c, linestyle="--", linewidth=1.1, zorder=4)
    if layout is not None:
        layout.update(
            labels=[
                {"text": txt, "x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3]} for (_, txt, _), b in zip(items, boxes)
            ],
            bars_top=max(bar_top, 1.0) / ax.get_ylim()[1],
        )
    return fig


def threshold_caption(column: str, thresholds: list[Threshold]) -> str:
    """`stage: CAT: 0.1 <= tokens_per_char <= 0.5; NCAT: ... (CAT = is_category; ...)`, one entry per
    stage and guard; a lower and an upper bound under one guard read as one range."""
    if not thresholds:
        return "no threshold in the config"
    out = []
    for stage in dict.fromkeys(t.stage for t in thresholds):
        parts, means = [], []
        mine = [t for t in thresholds if t.stage == stage]
        for when in dict.fromkeys(t.when for t in sorted(mine, key=lambda t: t.when)):
            ts = sorted((t for t in mine if t.when == when), key=lambda t: t.value)
            lower = [t for t in ts if t.op in (">", ">=")]
            upper = [t for t in ts if t.op in ("<", "<=")]
            if len(lower) == 1 and len(upper) == 1 and lower[0].value <= upper[0].value and len(ts) == 2:
                flip = {">": "<", ">=": "<="}[lower[0].op]
                cond = f"{lower[0].value:g} {flip} {column} {upper[0].op} {upper[0].value:g}"
            else:
                cond = ", ".join(f"{column} {t.op} {t.value:g}" for t in ts)
            parts.append(f"{when}: {cond}" if when else cond)
            means += [m for t in ts for m in t.when_means.split("; ") if m]
        extra = f" ({'; '.join(dict.fromkeys(means))})" if means else ""
        out.append(f"{stage}: {'; '.join(parts)}{extra}")
    return " · ".join(out)


def _is_annotation(field: pa.Field) -> bool:
    return pa.types.is_floating(field.type)


def scan_output(output: str) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict[str, int], int]:
    """Float column values (kept / dropped) and refinement statuses, one row group at a time."""
    values: dict[str, dict[str, list[np.ndarray]]] = {}
    statuses: Counter[str] = Counter()
    has_prox = False
    total = 0
    for f in output_files(output):
        pf = open_parquet(output, f)
        schema = pf.schema_arrow
        floats = [fl.name for fl in schema if _is_annotation(fl)]
        want = floats + ([prox.STATUS] if prox.STATUS in schema.names else [])
        has_prox |= prox.STATUS in schema.names
        side = "kept" if f.where == "data" else "dropped"
        for rg in range(pf.metadata.num_row_groups):
            total += pf.metadata.row_group(rg).num_rows
            if not want:
                statuses[classify(f.where, None)] += pf.metadata.row_group(rg).num_rows
                continue
            t = pf.read_row_group(rg, columns=want)
            for c in floats:
                arr = t.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                arr = arr[np.isfinite(arr)]
                if arr.size:
                    values.setdefault(c, {"kept": [], "dropped": []})[side].append(arr)
            if prox.STATUS in t.column_names:
                for s in t.column(prox.STATUS).to_pylist():
                    statuses[classify(f.where, s)] += 1
            else:
                statuses[classify(f.where, None)] += t.num_rows
    return values, (dict(statuses) if has_prox else {}), total


def _cap(arrs: list[np.ndarray]) -> np.ndarray:
    v = np.concatenate(arrs) if arrs else np.zeros(0)
    if v.size > MAX_VALUES:
        v = v[:: int(np.ceil(v.size / MAX_VALUES))]
    return v


def _conserved(rec: dict[str, Any]) -> bool:
    """stats.json's own verdict for a stage or the run; recomputed from the counts when the key is
    missing (a stats.json of another curate version), rather than showing a false ✗."""
    if "conserved" in rec:
        return bool(rec["conserved"])
    if "docs_in" in rec:
        return rec["docs_in"] == rec.get("docs_out", 0) + sum((rec.get("dropped") or {}).values())
    return all(_conserved(s) for s in accounted_stages(rec))


def _table(stages: list[dict[str, Any]]) -> str:
    rows = []
    for s in stages:
        kept = f"{s['chars_out'] / s['chars_in']:.1%}" if s.get("chars_in") else "–"
        reasons = ", ".join(f"{html.escape(k)} {v:,}" for k, v in s.get("dropped", {}).items()) or "–"
        ok = "✓" if _conserved(s) else "<b style='color:#c0392b'>✗</b>"
        rows.append(
            f"<tr><td>{html.escape(s['label'])}</td><td class=n>{s['docs_in']:,}</td><td class=n>{s['docs_out']:,}</td>"
            f"<td class=n>{s['dropped_total']:,}</td><td>{reasons}</td><td class=n>{kept}</td><td>{ok}</td></tr>"
        )
    head = "<tr><th>stage</th><th>docs in</th><th>docs out</th><th>dropped</th><th>drop reasons</th><th>chars kept</th><th>conserved</th></tr>"
    return f"<table class=stats id=stage-table>{head}{''.join(rows)}</table>"


def contamination_sections(stats: dict[str, Any]) -> list[str]:
    """One section per decontaminate stage: per eval set the documents and n-grams hit, the items most hit and
    example spans (the stage's report in stats.json)."""
    out = []
    for s in stats.get("stages", []):
        rep = s.get("report") or {}
        if rep.get("kind") != "decontamination":
            continue
        e = html.escape
        rows, details = [], []
        for name, r in rep.get("sets", {}).items():
            rows.append(
                f"<tr><td>{e(name)}</td><td class=n>{r['docs_hit']:,}</td><td class=n>{r['docs_contaminated']:,}</td>"
                f"<td class=n>{r['ngrams_hit']:,}</td><td class=n>{r.get('items_hit', 0):,} / "
                f"{r.get('eval_items', 0):,}</td></tr>"
            )
            top = "".join(
                f"<tr><td class=n>{t['item']}</td><td class=n>{t['ngrams_hit']:,}</td><td>{e(str(t.get('text') or ''))}</td></tr>"
                for t in r.get("top_items", [])
            )
            ex = "".join(
                f"<tr><td>{e(str(x['id']))}</td><td class=n>{x['start']}-{x['end']}</td><td>{e(x['text'])}</td></tr>"
                for x in r.get("examples", [])
            )
            details.append(
                f"<h3>{e(name)}: items most hit</h3><table class=stats><tr><th>item</th><th>n-grams</th>"
                f"<th>item text (start)</th></tr>{top}</table>"
                f"<h3>{e(name)}: example spans</h3><table class=stats><tr><th>document</th><th>characters</th>"
                f"<th>matched text</th></tr>{ex}</table>"
            )
        head = (
            "<tr><th>eval set</th><th>documents hit</th><th>contaminated</th><th>n-grams hit</th>"
            "<th>items hit / items</th></tr>"
        )
        out.append(
            f"<section id='contamination-{e(s['label'])}'><h2>Contamination ({e(s['label'])}, mode "
            f"{e(str(rep.get('mode')))})</h2><table class=stats>{head}{''.join(rows)}</table>{''.join(details)}</section>"
        )
    return out


CSS = """
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans",sans-serif;color:#1d1d22;background:#f7f7f8}
header{padding:12px 22px;background:#23232b;color:#fff}header h1{margin:0;font-size:18px}header .sub{color:#c8c8d2;font-size:12.5px}
main{padding:14px 22px;max-width:1250px}section{background:#fff;border:1px solid #e3e3e8;border-radius:8px;padding:12px 16px;margin-bottom:14px}
h2{font-size:15px;margin:0 0 8px}img{max-width:100%}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:10px}
.grid figure{margin:0}figcaption{font-size:12px;color:#6b6b76}table.stats{border-collapse:collapse;font-size:13px;width:100%}
table.stats td,table.stats th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.kpi{display:flex;gap:24px;flex-wrap:wrap}.kpi div{font-size:12px;color:#6b6b76}.kpi b{display:block;font-size:20px;color:#1d1d22}
.muted{color:#6b6b76;font-size:12.5px}
"""


def build_report(output: str, bins: int = 40) -> str:
    info = read_run_info(output)
    stats, run = info["stats"], info["run"]
    if not stats and not run:
        output_files(output)  # raises a clear error if this is not an output folder at all
    stages = accounted_stages(stats) if stats else []
    values, statuses, n_rows = scan_output(output)
    problems: list[str] = []  # stages whose thresholds cannot be read here: said on the page, not dropped silently
    thresholds = run_thresholds(run, values.keys(), problems) if run else []
    name = stats.get("run") or (run.get("decisive", {}).get("output", {}).get("path")) or output
    parts = _summary_sections(stats, stages, n_rows, output) + _funnel_sections(stats, stages)
    if statuses:
        parts.append(_refinement_section(statuses))
    parts += generation_sections(stats)
    parts.append(_annotations_section(values, thresholds, problems, bins, n_rows))
    sub = f"{html.escape(output)} · {n_rows:,} rows read"
    return (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>curate report — {html.escape(str(name))}</title>"
        f"<style>{CSS}</style></head><body><header><h1>curate report — {html.escape(str(name))}</h1>"
        f"<div class=sub>{sub}</div></header><main>{''.join(parts)}</main></body></html>"
    )


def _summary_sections(stats: dict[str, Any], stages: list[dict[str, Any]], n_rows: int, output: str) -> list[str]:
    """The key figures (documents and characters kept, complete, conserved, wall time); a note when the
    output holds no document."""
    parts = []
    kpis = []
    if stages:
        first, last = stages[0], stages[-1]
        kpis += [
            ("input documents", f"{first['docs_in']:,}"),
            ("output documents", f"{last['docs_out']:,}"),
            ("documents kept", f"{last['docs_out'] / first['docs_in']:.1%}" if first["docs_in"] else "–"),
            ("characters kept", f"{last['chars_out'] / first['chars_in']:.1%}" if first["chars_in"] else "–"),
        ]
    if stats:
        kpis += [
            ("complete", "yes" if stats.get("complete") else "NO"),
            ("conserved", "yes" if _conserved(stats) else "NO"),
        ]
        if "wall_s" in stats:
            kpis.append(("wall time", f"{stats['wall_s']:,} s"))
    if kpis:
        parts.append(
            "<section id=summary><div class=kpi>"
            + "".join(f"<div>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in kpis)
            + "</div></section>"
        )
    if n_rows == 0:
        parts.append(
            f"<section id=no-documents><h2>No documents</h2><p>{html.escape(empty_note(output))}</p></section>"
        )
    return parts


def _funnel_sections(stats: dict[str, Any], stages: list[dict[str, Any]]) -> list[str]:
    """The funnel and drop reasons per stage, then the contamination sections of decontaminate stages."""
    if not stages:
        return [
            "<section><p class=muted>no stats.json in this output (run `curate stats CONFIG` to write it)</p></section>"
        ] + (contamination_sections(stats) if stats else [])
    d = drops_chart(stages)
    return [
        f"<section id=funnel><h2>Funnel: documents and characters kept per stage</h2>"
        f"<img alt='funnel' src='{funnel_chart(stages)}'>{_table(stages)}</section>",
        "<section id=drops><h2>Drop reasons per stage</h2>"
        + (f"<img alt='drop reasons' src='{d}'>" if d else "<p class=muted>no document was dropped</p>")
        + "</section>",
    ] + (contamination_sections(stats) if stats else [])


def generation_sections(stats: dict[str, Any]) -> list[str]:
    """What each stage that ran a model cost (stats.json's `generation` records), with the derived
    device-hours per billion input tokens."""
    rows = [(s["label"], s["generation"]) for s in (stats or {}).get("stages", []) if s.get("generation")]
    if not rows:
        return []
    head = (
        "<tr><th>stage</th><th>prompts</th><th>input tokens</th><th>generated tokens</th>"
        "<th>generated tokens/s</th><th>device-s</th><th>device-h per 1B input tokens</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(label)}</td><td class=n>{g['prompts']:,}</td><td class=n>{g['prompt_tokens']:,}</td>"
        f"<td class=n>{g['generated_tokens']:,}</td><td class=n>{g['generated_tokens_per_s']:,.1f}</td>"
        f"<td class=n>{g['device_s']:,.1f}</td><td class=n>{g['device_hours_per_1b_input_tokens']:,.2f}</td></tr>"
        for label, g in rows
    )
    return [
        f"<section id=generation><h2>Model generation</h2><table class=stats>{head}{body}</table>"
        "<p class=muted>input tokens are the prompt tokens the model read (with both ProX stages on, about twice "
        "the raw text's tokens).</p></section>"
    ]


def _refinement_section(statuses: dict[str, int]) -> str:
    rows = "".join(
        f"<tr><td>{k}</td><td class=n id='status-{k}'>{statuses[k]:,}</td></tr>" for k in STATUSES if statuses.get(k)
    )
    return (
        f"<section id=refinement><h2>Refinement (ProX) status</h2><div class=grid><figure>"
        f"<img alt='statuses' src='{status_chart(statuses)}'></figure>"
        f"<table class=stats><tr><th>status</th><th>documents</th></tr>{rows}</table></div>"
        f"<p class=muted>statuses of documents that reached the refiner; “dropped” counts documents "
        f"that other stages dropped before it (with keep_rejected).</p></section>"
    )


def _annotations_section(
    values: dict[str, dict[str, list[np.ndarray]]],
    thresholds: list[Threshold],
    problems: list[str],
    bins: int,
    n_rows: int,
) -> str:
    """A histogram per float column, kept against dropped, with the thresholds the run's rules apply."""
    if not values:
        why = "no documents in the output" if n_rows == 0 else "no float annotation column in the output"
        return f"<section id=annotations><h2>Annotations</h2><p class=muted>{why}</p></section>"
    figs = []
    colors = guard_colors(thresholds)
    for col in sorted(values):
        kept, dropped = _cap(values[col]["kept"]), _cap(values[col]["dropped"])
        if kept.size + dropped.size == 0:
            continue
        ts = [t for t in thresholds if t.column == col]
        layout: dict[str, Any] = {}
        png = histogram_chart(col, kept, dropped, ts, bins, layout, colors)
        srcs = html.escape("\n".join(dict.fromkeys(f"{t.stage}: {t.source}" for t in ts)))
        figs.append(
            f"<figure data-column='{html.escape(col)}' data-layout='{html.escape(json.dumps(layout))}'>"
            f"<img alt='{html.escape(col)}' src='{png}'><figcaption title='{srcs}'>"
            f"{html.escape(threshold_caption(col, ts))}</figcaption></figure>"
        )
    note = (
        "kept documents from data/, dropped ones from rejected/"
        if any(v["dropped"] for v in values.values())
        else "kept documents only (set output.keep_rejected to see the dropped ones)"
    )
    missing = "".join(f"<p class=muted>{html.escape(p)}</p>" for p in problems)
    return (
        f"<section id=annotations><h2>Annotations</h2><p class=muted>every float column; dashed lines are "
        f"thresholds found in the config's rules; {note}.</p>{missing}<div class=grid>{''.join(figs)}</div></section>"
    )


def write_report(output: str, path: str, bins: int = 40) -> str:
    if bins < 2:
        raise CurateError("--bins must be at least 2")
    page = build_report(output, bins)
    write_file_atomic(path, page)
    return path
