"""A ProX outcome as spans of the text the refiner received, each labelled with the calls behind it.

The executor (apply.py) replaces every `source_str` in program order, then removes line ranges
(line numbers of the original, merged): `prox_spans` replays that as a composition of span sets
(core/edits.py `compose`), so the spans are offsets into the refiner's input whatever the
normalizations did before the removals. The result is checked against the executor's text; a
disagreement (another executor's semantics) falls back to a text diff labelled "(unattributed)".
"""

from __future__ import annotations

from typing import Any

from curate.core import edits

UNATTRIBUTED = "(unattributed)"


def _occurrences(text: str, source: str, target: str, call: str) -> list[edits.Span]:
    """Non-overlapping occurrences, left to right: what str.replace replaces."""
    out: list[edits.Span] = []
    i = text.find(source)
    while i != -1:
        out.append((i, i + len(source), target, (call,)))
        i = text.find(source, i + len(source))
    return out


def _removal_spans(text: str, ops: list[dict[str, Any]]) -> list[edits.Span]:
    """The merged line ranges as spans: a range takes its lines' newlines with it, the last range the
    newline before it, as "\\n".join of the kept lines does."""
    starts = [0]
    i = text.find("\n")
    while i != -1:
        starts.append(i + 1)
        i = text.find("\n", i + 1)
    n = len(starts)
    ranges: list[list[Any]] = []
    for op in sorted(ops, key=lambda o: (int(o["line_start"]), int(o["line_end"]))):
        a, b, call = int(op["line_start"]), min(int(op["line_end"]), n - 1), str(op.get("call") or "remove_lines")
        if a > b:
            continue
        if ranges and a <= ranges[-1][1] + 1:
            ranges[-1][1] = max(ranges[-1][1], b)
            if call not in ranges[-1][2]:
                ranges[-1][2].append(call)
        else:
            ranges.append([a, b, [call]])
    spans: list[edits.Span] = []
    for a, b, calls in ranges:
        if b + 1 < n:
            spans.append((starts[a], starts[b + 1], "", tuple(calls)))
        else:
            spans.append((starts[a] - 1 if a else 0, len(text), "", tuple(calls)))
    return spans


def prox_spans(text: str, ops: list[dict[str, Any]], final: str) -> list[edits.Span]:
    """Spans of `text` (the refiner's input) that give `final`, from the executor's applied ops."""
    acc: list[edits.Span] = []
    cur = text
    for op in ops:
        if op.get("op") != "normalize" or not op.get("source"):
            continue
        occ = _occurrences(cur, op["source"], op.get("target") or "", str(op.get("call") or "normalize"))
        if occ:
            acc = edits.compose(acc, cur, occ) if acc else occ
            cur = edits.apply(cur, occ)
    removals = [op for op in ops if op.get("op") == "remove_lines"]
    if removals:
        rm = _removal_spans(cur, removals)
        acc = edits.compose(acc, cur, rm) if acc else rm
    if edits.apply(text, acc) != final:
        return edits.diff_spans(text, final, (UNATTRIBUTED,))
    return acc
