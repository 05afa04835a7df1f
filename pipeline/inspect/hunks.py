"""Rebuild a refined document's diff from its program edits, each change labelled with its call.

The refiner stores the original text (`prox_original_text`), the final text (`text`) and the
operations it applied (`prox_edits`, JSON, in order): `normalize` ops (applied first, like
`str.replace` over the whole text) and `remove_lines` ops (0-based inclusive line numbers of the
ORIGINAL document, applied after the normalizations). We replay them on a list of segments that
remember both the old and the new text of every piece and the calls that touched it, so each
removed line range and each replaced span carries the call that caused it. A generic text diff
(difflib) could show *what* changed but not *which call* did it.

The replay is checked against the stored final text. When they disagree (an executor with other
semantics, a hand-edited file) we say so and fall back to an unlabelled line diff rather than
showing a labelled diff that is not what happened.

A document whose stages recorded their changes (the `edits` column, core/edits.py) is shown from
those instead (`stage_diff`): every stage's spans composed into one diff of the original input
text, each change labelled by its stage (ProX's with the calls behind it too).
"""

from __future__ import annotations

import bisect
import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from curate.core import edits as stage_edits_

UNATTRIBUTED = "(unattributed)"


@dataclass
class Segment:
    """A piece of text: `old` in the original, `new` after normalizations; `calls` that rewrote it."""

    old: str
    new: str
    calls: tuple[str, ...] = ()
    line_lo: int = 0
    line_hi: int = 0

    @property
    def plain(self) -> bool:
        return not self.calls and self.old == self.new

    def to_json(self) -> Any:
        return self.new if self.plain else [self.old, self.new, list(self.calls)]


@dataclass
class Row:
    """One displayed row: usually one original line (several when a normalization joined lines)."""

    line_start: int
    line_end: int
    segments: list[Segment]
    removed_by: tuple[str, ...] = ()

    @property
    def old(self) -> str:
        return "".join(s.old for s in self.segments)

    @property
    def new(self) -> str:
        return "".join(s.new for s in self.segments)

    @property
    def removed(self) -> bool:
        return bool(self.removed_by)

    @property
    def normalized_by(self) -> tuple[str, ...]:
        calls: list[str] = []
        for s in self.segments:
            for c in s.calls:
                if c not in calls:
                    calls.append(c)
        return tuple(calls)

    @property
    def changed(self) -> bool:
        return self.removed or bool(self.normalized_by)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"l": [self.line_start, self.line_end], "s": [s.to_json() for s in self.segments]}
        if self.removed_by:
            d["r"] = list(self.removed_by)
        return d


@dataclass
class DocDiff:
    rows: list[Row]
    edits: list[dict[str, Any]] = field(default_factory=list)
    # False when replaying the edits did not give the stored text (rows then come from difflib)
    consistent: bool = True
    note: str = ""
    # stage -> spans it changed, when the diff comes from the edits column (in pipeline order)
    stages: dict[str, int] = field(default_factory=dict)

    @property
    def lines_removed(self) -> int:
        return sum(r.line_end - r.line_start + 1 for r in self.rows if r.removed)

    @property
    def rows_normalized(self) -> int:
        return sum(1 for r in self.rows if not r.removed and r.normalized_by)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [r.to_json() for r in self.rows],
            "consistent": self.consistent,
            "note": self.note,
            "stages": self.stages,
        }


def parse_edits(raw: str | list | None) -> list[dict[str, Any]]:
    """`prox_edits` as a list of op dicts (a JSON string in Parquet; tolerate an already-parsed list)."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return []
    return [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []


def _initial_segments(text: str) -> list[Segment]:
    segs: list[Segment] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            segs.append(Segment("\n", "\n", (), i - 1, i - 1))
        segs.append(Segment(line, line, (), i, i))
    return segs


def _apply_normalize(segs: list[Segment], source: str, target: str, call: str) -> list[Segment]:
    """Replace every non-overlapping `source` (left to right, as str.replace) in the current text."""
    if not source:
        return segs
    cur = "".join(s.new for s in segs)
    occ: list[tuple[int, int]] = []
    i = cur.find(source)
    while i != -1:
        occ.append((i, i + len(source)))
        i = cur.find(source, i + len(source))
    if not occ:
        return segs
    # split untouched segments at occurrence boundaries, so a replacement covers whole segments
    cuts = sorted({x for ab in occ for x in ab})
    split: list[Segment] = []
    pos = 0
    for s in segs:
        start, end = pos, pos + len(s.new)
        pos = end
        if not s.plain:
            split.append(s)
            continue
        bounds = [0] + [c - start for c in cuts if start < c < end] + [len(s.new)]
        for x, y in zip(bounds, bounds[1:]):
            split.append(Segment(s.new[x:y], s.new[x:y], (), s.line_lo, s.line_hi))
    starts = []
    pos = 0
    for s in split:
        starts.append(pos)
        pos += len(s.new)
    # map each occurrence to the segments it overlaps; merge occurrences whose segment spans touch
    groups: list[list[Any]] = []  # [first_idx, last_idx, [occurrences]]
    for a, b in occ:
        k = max(bisect.bisect_right(starts, a) - 1, 0)
        while k < len(split) and starts[k] + len(split[k].new) <= a and not (not split[k].new and starts[k] > a):
            k += 1
        j = bisect.bisect_left(starts, b) - 1
        if groups and groups[-1][1] >= k:
            groups[-1][1] = max(groups[-1][1], j)
            groups[-1][2].append((a, b))
        else:
            groups.append([k, j, [(a, b)]])
    out: list[Segment] = []
    last = 0
    for first, lastidx, occs in groups:
        out.extend(split[last:first])
        covered = split[first : lastidx + 1]
        A, B = starts[first], starts[lastidx] + len(split[lastidx].new)
        new_parts, p = [], A
        for a, b in occs:
            new_parts.append(cur[p:a])
            new_parts.append(target)
            p = b
        new_parts.append(cur[p:B])
        calls: list[str] = []
        for s in covered:
            calls.extend(c for c in s.calls if c not in calls)
        if call not in calls:
            calls.append(call)
        out.append(
            Segment(
                "".join(s.old for s in covered),
                "".join(new_parts),
                tuple(calls),
                min(s.line_lo for s in covered),
                max(s.line_hi for s in covered),
            )
        )
        last = lastidx + 1
    out.extend(split[last:])
    return out


def _rows(segs: list[Segment]) -> list[Row]:
    """Group segments into rows, ending a row at each untouched newline."""
    rows: list[Row] = []
    cur: list[Segment] = []
    for s in segs:
        if s.plain and s.new == "\n":
            rows.append(
                Row(cur[0].line_lo if cur else s.line_lo, max((c.line_hi for c in cur), default=s.line_lo), cur)
            )
            cur = []
        else:
            cur.append(s)
    if cur or not rows:
        lo = cur[0].line_lo if cur else (rows[-1].line_end + 1 if rows else 0)
        rows.append(Row(lo, max((c.line_hi for c in cur), default=lo), cur))
    return rows


def replay(original: str, edits: Iterable[dict[str, Any]]) -> tuple[str, list[Row]]:
    """Apply the ops as the executor does; return the final text and the labelled rows."""
    edits = list(edits)
    segs = _initial_segments(original)
    for e in edits:
        if e.get("op") == "normalize":
            segs = _apply_normalize(segs, str(e.get("source", "")), str(e.get("target", "")), _call(e))
    removed: dict[int, list[str]] = {}
    for e in edits:
        if e.get("op") == "remove_lines":
            lo, hi = int(e.get("line_start", 0)), int(e.get("line_end", -1))
            for ln in range(lo, hi + 1):
                removed.setdefault(ln, []).append(_call(e))
    rows = _rows(segs)
    for r in rows:
        lines = range(r.line_start, r.line_end + 1)
        if all(ln in removed for ln in lines):
            calls: list[str] = []
            for ln in lines:
                calls.extend(c for c in removed[ln] if c not in calls)
            r.removed_by = tuple(calls)
    final = "\n".join(r.new for r in rows if not r.removed)
    return final, rows


def _call(e: dict[str, Any]) -> str:
    if e.get("call"):
        return str(e["call"])
    if e.get("op") == "normalize":
        return f"normalize(source_str={json.dumps(e.get('source', ''))}, target_str={json.dumps(e.get('target', ''))})"
    return f"remove_lines(line_start={e.get('line_start')}, line_end={e.get('line_end')})"


def line_diff(before: str, after: str) -> list[Row]:
    """An unlabelled line diff (difflib), for when the edits cannot explain the stored text."""
    a, b = before.split("\n"), after.split("\n")
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows.extend(Row(i, i, [Segment(a[i], a[i], (), i, i)]) for i in range(i1, i2))
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i = i1 + k
            if k < i2 - i1 and k < j2 - j1:
                rows.append(Row(i, i, [Segment(a[i], b[j1 + k], (UNATTRIBUTED,), i, i)]))
            elif k < i2 - i1:
                rows.append(Row(i, i, [Segment(a[i], a[i], (), i, i)], removed_by=(UNATTRIBUTED,)))
            else:
                # an inserted line has no original line number; show it after the previous one
                rows.append(Row(max(i1 - 1, 0), max(i1 - 1, 0), [Segment("", b[j1 + k], (UNATTRIBUTED,), i1, i1)]))
    return rows


def _line_segments(segs: list[Segment], piece: str, line: int, new: str | None, labels: tuple[str, ...]) -> int:
    """Append `piece` of the original (plain when `new` is None, else cut) as one segment per line and per
    newline, so a cut of whole lines reads as removed rows. Returns the line the piece ends on."""
    for k, part in enumerate(piece.split("\n")):
        if k:
            segs.append(Segment("\n", "\n" if new is None else "", labels, line, line))
            line += 1
        if part:
            segs.append(Segment(part, part if new is None else "", labels, line, line))
    return line


def _stage_rows(segs: list[Segment]) -> list[Row]:
    """Rows of the original lines (a row ends at an untouched newline); within one, lines cut whole (with a
    newline: their own, or the one before the text's last line) are removed rows of their own."""
    rows: list[Row] = []
    cur: list[Segment] = []
    for s in segs:
        if s.plain and s.new == "\n":
            rows += _split_cut_lines(cur, s.line_lo)
            cur = []
        else:
            cur.append(s)
    if cur or not rows:
        rows += _split_cut_lines(cur, rows[-1].line_end + 1 if rows else 0)
    return rows


def _is_cut(piece: list[Segment]) -> bool:
    return bool(piece) and all(c.calls and not c.new for c in piece)


def _split_cut_lines(segs: list[Segment], line: int) -> list[Row]:
    if not segs:
        return [Row(line, line, [])]
    pieces: list[list[Segment]] = [[]]
    for s in segs:
        pieces[-1].append(s)
        if s.old == "\n" and not s.plain:  # a changed newline ends a piece (its line)
            pieces.append([])
    pieces = [p for p in pieces if p]
    for i in range(len(pieces) - 1):
        p, q = pieces[i], pieces[i + 1]
        if not _is_cut(p) and _is_cut(q) and p[-1].old == "\n" and _is_cut(p[-1:]):
            nl = p.pop()  # "a\nb" -> "a": the newline goes with the line it removed
            q.insert(0, Segment(nl.old, nl.new, nl.calls, q[0].line_lo, q[0].line_lo))
    rows: list[Row] = []
    kept: list[Segment] = []
    for p in pieces:
        if _is_cut(p):
            if kept:
                rows.append(Row(kept[0].line_lo, max(c.line_hi for c in kept), kept))
                kept = []
            labels = tuple(dict.fromkeys(x for c in p for x in c.calls))
            rows.append(Row(p[0].line_lo, max(c.line_hi for c in p), p, removed_by=labels))
        else:
            kept += p  # lines joined by a cut newline stay one row: they are one line of the result
    if kept:
        rows.append(Row(kept[0].line_lo, max(c.line_hi for c in kept), kept))
    return rows


def stage_diff(text: str, recorded: list[dict[str, Any]]) -> DocDiff | None:
    """The diff of a document from its `edits` column: rows of its original text, each change labelled by
    the stage that made it. None when the spans do not replay onto the stored text."""
    try:
        original, spans = stage_edits_.original_spans(text, recorded)
    except (ValueError, KeyError, TypeError):
        return None
    segs: list[Segment] = []
    pos = line = 0
    for s, e, new, labels in spans:
        line = _line_segments(segs, original[pos:s], line, None, ())
        old = original[s:e]
        if not new and "\n" in old:
            line = _line_segments(segs, old, line, "", labels)
        else:
            segs.append(Segment(old, new, labels, line, line + old.count("\n")))
            line += old.count("\n")
        pos = e
    _line_segments(segs, original[pos:], line, None, ())
    counts: dict[str, int] = {}
    for ed in recorded:
        counts[ed["stage"]] = counts.get(ed["stage"], 0) + 1
    return DocDiff(_stage_rows(segs), list(recorded), True, "", counts)


def doc_diff(
    text: str,
    original: str | None,
    edits_raw: str | list | None,
    dropped: bool = False,
    recorded: list[dict[str, Any]] | None = None,
) -> DocDiff:
    """The labelled diff of one document (rows of its original text): from the stages' recorded edits when
    there are any (`recorded`, the edits column), else from ProX's ops. A document ProX dropped after its
    program ran shows that program's edits (why it was dropped), which no stage recorded: its text kept."""
    edits = parse_edits(edits_raw)
    if recorded and not (dropped and edits):
        got = stage_diff(text, recorded)
        if got is not None:
            return got
    before = original if original is not None else text
    if not edits:
        if original is not None and original != text:
            return DocDiff(line_diff(original, text), edits, False, "text changed but no edits were recorded")
        return DocDiff(_rows(_initial_segments(before)), edits)
    final, rows = replay(before, edits)
    if final == text or dropped:
        # a dropped doc may keep its original text: the rows show what its program would have removed
        note = (
            "dropped after its program ran: rows show the edits it made before the drop"
            if dropped and final != text
            else ""
        )
        return DocDiff(rows, edits, True, note)
    return DocDiff(
        line_diff(before, text),
        edits,
        False,
        "replaying the recorded edits does not give the stored text; showing a plain line diff",
    )


def display_items(rows: list[Row], context: int = 2, full: bool = False) -> list[Row | int]:
    """Rows to show: changed rows with `context` rows around them; an int N stands for N hidden rows."""
    if full:
        return list(rows)
    keep = [False] * len(rows)
    for i, r in enumerate(rows):
        if r.changed:
            for j in range(max(0, i - context), min(len(rows), i + context + 1)):
                keep[j] = True
    items: list[Row | int] = []
    hidden = 0
    for r, k in zip(rows, keep):
        if k:
            if hidden:
                items.append(hidden)
                hidden = 0
            items.append(r)
        else:
            hidden += 1
    if hidden:
        items.append(hidden)
    return items
