"""Every edit visible: what each stage changed in a document's text, as spans of the text it received.

A document's `edits` column is a list of structs {stage, start, end, old, new, note}, one per changed
span: in the text that stage received, characters [start, end) (Python string offsets) held `old`
and now hold `new` ("" for a cut). One stage's spans are sorted and disjoint; stages append theirs
in pipeline order. Storing `old` is what makes the record complete: the text each stage received,
and the original text, are rebuilt from the final text (`undo`), so nothing needs a second copy of
the document. `note` says why when a stage has more to say than its name (ProX: the program calls
behind a span); it is null otherwise.

A stage with exact spans records them (`record`); one that only knows its text before and after (a
wrapped datatrove filter) records `diff_spans(before, after)`. `compose` turns a sequence of edits
(ProX's normalizations, then its line removals) into spans of the first text. A leaf module: the
stage API re-exports it, `curate diff` reads it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

import pyarrow as pa

EDITS = "edits"
EDIT_TYPE = pa.list_(
    pa.struct(
        [
            ("stage", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("old", pa.string()),
            ("new", pa.string()),
            ("note", pa.string()),
        ]
    )
)
EDITS_DESCRIPTION = (
    "every change a stage made to the text: {stage, start, end, old, new, note}, offsets into the text that "
    "stage received, stages in pipeline order (the original text is rebuilt from text + edits)"
)

# (start, end, new, labels): a replacement of base[start:end] by `new`; labels say which calls made it
Span = tuple[int, int, str, tuple[str, ...]]
# a refinement of a replaced block by a character diff costs O(n*m): only for blocks this small
_CHAR_DIFF_MAX = 2000


def apply(text: str, spans: Iterable[Span]) -> str:
    """`text` with every span (sorted, disjoint) replaced."""
    out, pos = [], 0
    for s, e, new, _ in spans:
        out.append(text[pos:s])
        out.append(new)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def compose(first: Sequence[Span], between: str, second: Sequence[Span]) -> list[Span]:
    """Spans of an original text X equal to applying `first` (spans of X) and then `second` (spans of
    `between` = apply(X, first)). Spans that overlap or touch in `between` merge into one, with the labels
    of both; a span of `second` that reaches into a replaced piece takes the whole piece with it, so every
    result maps whole characters of X to whole characters of the final text."""
    ys: list[tuple[int, int, int, int]] = []  # (start, end in `between`, 0 = first / 1 = second, index)
    shift = 0
    for i, (s, e, new, _) in enumerate(first):
        ys.append((s + shift, s + shift + len(new), 0, i))
        shift += len(new) - (e - s)
    ys += [(s, e, 1, j) for j, (s, e, _, _) in enumerate(second)]
    ys.sort(key=lambda v: (v[0], v[1], v[2]))
    clusters: list[list[Any]] = []  # [start, end, members]
    for item in ys:
        if clusters and item[0] <= clusters[-1][1]:
            c = clusters[-1]
            c[1] = max(c[1], item[1])
            c[2].append(item)
        else:
            clusters.append([item[0], item[1], [item]])
    out: list[Span] = []
    shift = 0  # growth of the text by the spans of `first` before the current cluster
    for a, b, members in clusters:
        x0 = a - shift
        labels: list[str] = []
        inner: list[Span] = []
        for _, _, which, k in members:
            span = first[k] if which == 0 else second[k]
            if which == 0:
                shift += len(span[2]) - (span[1] - span[0])
                labels += [x for x in span[3] if x not in labels]
            else:
                inner.append((span[0] - a, span[1] - a, span[2], span[3]))
        for span in inner:  # the later edit's labels after the earlier's: pipeline order
            labels += [x for x in span[3] if x not in labels]
        x1 = b - shift
        out.append((x0, x1, apply(between[a:b], inner), tuple(labels)))
    return out


def diff_spans(before: str, after: str, labels: tuple[str, ...] = ()) -> list[Span]:
    """Spans of `before` that make `after`. Lines are matched ignoring the whitespace around them (C4 strips
    every line it keeps), so a kept line costs at most a span of its changed middle; unmatched blocks are
    narrowed by a character diff when small. Any two texts give spans that replay exactly."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    pa_, pb = _offsets(a), _offsets(b)
    ka, kb = [x.strip() for x in a], [x.strip() for x in b]
    out: list[Span] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
        if tag != "equal":
            out += _narrow(before, after, (pa_[i1], pa_[i2]), (pb[j1], pb[j2]), labels, True)
            continue
        for i, j in zip(range(i1, i2), range(j1, j2)):
            if a[i] != b[j]:
                out += _narrow(before, after, (pa_[i], pa_[i + 1]), (pb[j], pb[j + 1]), labels, False)
    return out


def _narrow(
    before: str, after: str, old: tuple[int, int], new: tuple[int, int], labels: tuple[str, ...], chars: bool
) -> list[Span]:
    """before[old] became after[new]: a character diff when asked and small, else one span without the
    common prefix and suffix."""
    s, e = old
    t0, t1 = new
    if chars and (e - s) + (t1 - t0) <= _CHAR_DIFF_MAX:
        matcher = difflib.SequenceMatcher(None, before[s:e], after[t0:t1], autojunk=False)
        return [
            (s + k1, s + k2, after[t0 + m1 : t0 + m2], labels)
            for tg, k1, k2, m1, m2 in matcher.get_opcodes()
            if tg != "equal"
        ]
    p = 0
    while s + p < e and t0 + p < t1 and before[s + p] == after[t0 + p]:
        p += 1
    q = 0
    while e - q > s + p and t1 - q > t0 + p and before[e - q - 1] == after[t1 - q - 1]:
        q += 1
    return [(s + p, e - q, after[t0 + p : t1 - q], labels)]


def _offsets(lines: list[str]) -> list[int]:
    out = [0]
    for ln in lines:
        out.append(out[-1] + len(ln))
    return out


def to_records(stage: str, base: str, spans: Iterable[Span]) -> list[dict[str, Any]]:
    """The column's structs for spans of `base` (the text the stage received)."""
    return [
        {"stage": stage, "start": s, "end": e, "old": base[s:e], "new": new, "note": " · ".join(lab) or None}
        for s, e, new, lab in spans
    ]


def record(metadata: MutableMapping[str, Any], stage: str, base: str, spans: Iterable[Span]) -> None:
    """Append a stage's spans of `base` to a document's edits (nothing when there are none)."""
    recs = to_records(stage, base, spans)
    if recs:
        metadata[EDITS] = list(metadata.get(EDITS) or []) + recs


def by_stage(edits: Iterable[dict[str, Any]] | None) -> list[tuple[str, list[dict[str, Any]]]]:
    """The edits as (stage, its spans) in pipeline order: one group per run of the same stage."""
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for ed in edits or []:
        if groups and groups[-1][0] == ed["stage"]:
            groups[-1][1].append(ed)
        else:
            groups.append((ed["stage"], [ed]))
    return groups


def undo_stage(text: str, edits: Iterable[dict[str, Any]]) -> str:
    """The text one stage received, from the text it gave and its spans. ValueError when they disagree."""
    out, pos, shift = [], 0, 0
    for ed in edits:
        old, new = ed["old"] or "", ed["new"] or ""
        at = int(ed["start"]) + shift
        if at < pos or at + len(new) > len(text) or text[at : at + len(new)] != new:
            raise ValueError(f"edit of {ed['stage']} at {ed['start']} does not match the text")
        out += [text[pos:at], old]
        pos = at + len(new)
        shift += len(new) - len(old)
    out.append(text[pos:])
    return "".join(out)


def stage_texts(final: str, edits: Iterable[dict[str, Any]] | None) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(stage, the text it received, its spans) for every stage that edited, in pipeline order."""
    groups = by_stage(edits)
    out = []
    text = final
    for stage, eds in reversed(groups):
        text = undo_stage(text, eds)
        out.append((stage, text, eds))
    return out[::-1]


def undo(final: str, edits: Iterable[dict[str, Any]] | None) -> str:
    """The text before the first stage that edited (the input's text), from the final text and its edits."""
    got = stage_texts(final, edits)
    return got[0][1] if got else final


def original_spans(final: str, edits: Iterable[dict[str, Any]] | None) -> tuple[str, list[Span]]:
    """(original text, spans of it that give `final`), each span labelled `stage` or `stage: note` by every
    stage that touched it: all stages' edits as one diff of the original."""
    stages = stage_texts(final, edits)
    if not stages:
        return final, []
    acc: list[Span] = []
    for stage, base, eds in stages:
        spans: list[Span] = [
            (
                int(e["start"]),
                int(e["end"]),
                str(e["new"] or ""),
                (f"{stage}: {e['note']}" if e.get("note") else stage,),
            )
            for e in eds
        ]
        acc = compose(acc, base, spans) if acc else spans
    return stages[0][1], acc
