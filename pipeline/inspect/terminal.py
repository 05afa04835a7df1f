"""`curate diff` in the terminal: a unified-diff-like view of each document, every change labelled.

The layout is plain text first (`@@` headers, `-` / `+` rows, `[NNN]` original line numbers), so
it reads the same piped into `less`, `grep` or a file; rich only adds colour, and only when the
output is a terminal (or `--color always`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

from curate.refiners import columns as prox

from .hunks import DocDiff, Row, display_items, doc_diff
from .select import DROPPED, Record

STATUS_STYLE = {
    prox.KEPT: "green",
    prox.EDITED: "yellow",
    prox.IGNORED: "magenta",
    prox.DROPPED_BY_DOC: "red",
    prox.DROPPED_BY_CHUNK: "red",
    DROPPED: "red",
}


class _Console(Console):
    """rich's Console, but a closed pipe raises BrokenPipeError to the command (which exits 0)
    instead of rich's own `SystemExit(1)`."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def make_console(color: str = "auto") -> Console:
    """`auto`: colour only on a terminal. Wide and soft-wrapped when piped: lines are never cut."""
    if color == "always":
        return _Console(force_terminal=True, highlight=False)
    if color == "never":
        return _Console(no_color=True, force_terminal=False, highlight=False, width=10_000)
    c = _Console(highlight=False)
    return c if c.is_terminal else _Console(no_color=True, highlight=False, width=10_000)


def _num(i: int, width: int) -> str:
    return f"[{i:0{width}d}]"


def _segments_text(row: Row, side: str) -> Text:
    t = Text()
    for s in row.segments:
        piece = s.old if side == "old" else s.new
        piece = piece.replace("\n", "⏎")  # a normalization spanning lines: keep it on one row
        if s.plain:
            t.append(piece)
        else:
            t.append(piece, style="bold white on dark_red" if side == "old" else "bold black on green")
    return t


def _header(console: Console, r: Record, d: DocDiff) -> None:
    h = Text()
    h.append("━━ ", style="dim")
    h.append(r.id, style="bold")
    h.append("  ")
    h.append(r.status, style=f"bold {STATUS_STYLE.get(r.status, 'white')}")
    if r.source:
        h.append(f"  source {r.source}", style="dim")
    console.print(h, soft_wrap=True)
    bits = []
    if r.where == "rejected":
        bits.append(f"dropped by {r.drop_stage}: {r.drop_reason}")
    if d.stages:
        spans = ", ".join(f"{stage} ({n} span{'s' if n != 1 else ''})" for stage, n in d.stages.items())
        bits.append(f"edited by {spans}: {d.lines_removed} line(s) removed, {d.rows_normalized} row(s) changed")
    elif d.edits:
        bits.append(f"{len(d.edits)} edit(s): {d.lines_removed} line(s) removed, {d.rows_normalized} row(s) normalized")
    if bits:
        console.print("   " + "; ".join(bits), soft_wrap=True)
    if r.where == "rejected" and r.annotations:
        # why a filter dropped it: its scores next to the reason
        console.print(
            Text("   annotations: " + " · ".join(f"{k} {v}" for k, v in r.annotations.items()), style="dim"),
            soft_wrap=True,
        )
    for e in r.errors:
        console.print(Text(f"   error: {e}", style="red"), soft_wrap=True)
    if d.note:
        console.print(Text(f"   note: {d.note}", style="yellow"), soft_wrap=True)


def render_record(
    console: Console, r: Record, context: int = 2, full: bool = False, programs: bool = True, max_lines: int = 20
) -> None:
    d = doc_diff(r.text, r.original_text, r.edits, dropped=r.where == "rejected", recorded=r.stage_edits)
    _header(console, r, d)
    n_lines = d.rows[-1].line_end + 1 if d.rows else 0
    width = max(3, len(str(n_lines)))
    if not any(row.changed for row in d.rows):
        # nothing to diff: show the start of the text
        shown = d.rows if full else d.rows[:max_lines]
        # a document another stage dropped was never refined: "unchanged" would read as "kept as is"
        what = "text as dropped" if r.where == "rejected" else "unchanged"
        console.print(Text(f"@@ {what}, {n_lines} line(s)", style="cyan"), soft_wrap=True)
        for row in shown:
            console.print(Text(f" {_num(row.line_start, width)} ") + _segments_text(row, "new"), soft_wrap=True)
        if len(shown) < len(d.rows):
            console.print(Text(f"   … {len(d.rows) - len(shown)} more line(s) (--full shows all)", style="dim"))
    else:
        _render_rows(console, display_items(d.rows, context, full), width, None if full else 12)
    if programs:
        _render_programs(console, r)
    console.print()


def _label(lines: tuple[int, int], calls: Iterable[str], verb: str, width: int) -> Text:
    lo, hi = lines
    where = _num(lo, width) if lo == hi else f"{_num(lo, width)}–{_num(hi, width)}"
    t = Text("@@ ", style="cyan")
    t.append(f"{where} {verb} ", style="cyan")
    t.append(" · ".join(calls), style="bold cyan")
    return t


def _render_rows(console: Console, items: list[Row | int], width: int, max_block: int | None = 12) -> None:
    i = 0
    while i < len(items):
        it = items[i]
        if isinstance(it, int):
            console.print(Text(f"   … {it} unchanged line(s) …", style="dim"), soft_wrap=True)
            i += 1
            continue
        if it.removed:
            # one label for a run of rows removed by the same call(s)
            j = i
            while j + 1 < len(items) and isinstance(nxt := items[j + 1], Row) and nxt.removed_by == it.removed_by:
                j += 1
            block = [r for r in items[i : j + 1] if isinstance(r, Row)]  # all rows: the loop stopped at an int
            console.print(
                _label((it.line_start, block[-1].line_end), it.removed_by, "removed by", width), soft_wrap=True
            )
            shown = block if max_block is None or len(block) <= max_block else block[: max_block - 2]
            for row in shown:
                console.print(
                    Text(f"-{_num(row.line_start, width)} ", style="red")
                    + Text(row.old.replace("\n", "⏎"), style="red"),
                    soft_wrap=True,
                )
            if len(shown) < len(block):
                console.print(
                    Text(f"-   … {len(block) - len(shown)} more removed line(s) (--full shows all)", style="red dim"),
                    soft_wrap=True,
                )
            i = j + 1
            continue
        if it.normalized_by:
            console.print(_label((it.line_start, it.line_end), it.normalized_by, "changed by", width), soft_wrap=True)
            console.print(
                Text(f"-{_num(it.line_start, width)} ", style="red") + _segments_text(it, "old"), soft_wrap=True
            )
            console.print(
                Text(f"+{_num(it.line_start, width)} ", style="green") + _segments_text(it, "new"), soft_wrap=True
            )
        else:
            console.print(
                Text(f" {_num(it.line_start, width)} ", style="dim") + _segments_text(it, "new"), soft_wrap=True
            )
        i += 1


def _render_programs(console: Console, r: Record) -> None:
    if r.doc_program:
        console.print(
            Text("   program (doc):   ", style="dim") + Text(r.doc_program.strip(), style="blue"), soft_wrap=True
        )
    for k, p in enumerate(r.chunk_programs):
        lines = (p or "").strip().splitlines() or [""]
        console.print(Text(f"   program (chunk {k}): ", style="dim") + Text(lines[0], style="blue"), soft_wrap=True)
        pad = " " * len(f"   program (chunk {k}): ")
        for ln in lines[1:]:
            console.print(Text(pad) + Text(ln, style="blue"), soft_wrap=True)


def render(records: Iterable[Record], color: str = "auto", **kw: Any) -> int:
    """Print every record; returns how many were printed."""
    console = make_console(color)
    n = 0
    for r in records:
        render_record(console, r, **kw)
        n += 1
    return n
