"""Apply parsed ProX programs to a document and decide its fate (ProX calls this its executor).

Order and decisions (GAIR-NLP/ProX `utils/chunk_utils.py::execute_meta_operations`, `doc_utils.py`):
1. Doc stage: a valid `drop_doc()` drops the document (`dropped_by_doc`); otherwise it goes on.
   A program the parser refused as a whole (`Program.fatal`: too long, too many calls) decides
   nothing in either stage: the document goes on as if the doc stage had said keep.
2. Chunk stage: all chunks' calls in order. Errors are counted; with `max_errors` (2) or more
   (or a fatal program) the program is ignored and the original text kept (`program_ignored`).
3. Otherwise normalizations are applied first (each `source_str` replaced by `target_str`
   everywhere, in program order), then line removals (line numbers of the original text).
   As in ProX: a negative `line_start` reads as 0, `line_start > line_end` removes nothing, and
   the ranges are merged (sorted by start, adjacent ones joined) before past-the-end errors are
   counted, one per merged range; neither of the first two is an error, nor is a source not
   found or a source of "" or " " (skipped). A normalization that would make the text longer
   than `max_growth` x the original's length is refused and counted as an error.
4. The result is dropped (`dropped_by_chunk`) when it keeps <= 5% of the original's words or
   <= 10 words; else `edited` if the text changed, `kept` if not.

Line numbers stay those of the original document because a program line holds no newline (the
output is split on "\n" before parsing, and strings are read raw): the text is a list of lines
throughout. See docs/stages/prox.md for every difference from ProX's own executor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from operator import itemgetter

from .columns import DROPPED_BY_CHUNK, DROPPED_STATUSES, EDITED, IGNORED, KEPT
from .program import Call, Program


@dataclass
class DecisionLimits:
    """The thresholds that decide a document's status (the `prox_refine` options of the same names)."""

    max_errors: int = 2  # a chunk program with this many errors or more is ignored
    min_fraction_kept: float = 0.05  # drop when the kept share of words is <= this
    min_words_kept: int = 10  # drop when this many words or fewer remain
    max_growth: float = 2.0  # normalizations may make the text at most this many times its original length


DEFAULT_LIMITS = DecisionLimits()


@dataclass
class Outcome:
    status: str
    text: str
    errors: list[str] = field(default_factory=list)
    edits: list[dict] = field(default_factory=list)

    @property
    def dropped(self) -> bool:
        return self.status in DROPPED_STATUSES

    def edits_json(self) -> str:
        return json.dumps(self.edits, ensure_ascii=False)


def doc_decision(program: Program | None) -> tuple[bool, list[str]]:
    """(drop?, errors) for a doc-stage program; the first valid decision call wins. A fatal program
    (refused as a whole) decides nothing, as in the chunk stage: 300 junk lines after `drop_doc()`
    are a broken output, not a verdict."""
    if program is None:
        return False, []
    if program.fatal:
        return False, list(program.errors)
    for call in program.calls:
        if call.name == "drop_doc":
            return True, list(program.errors)
        if call.name == "keep_doc":
            break
    return False, list(program.errors)


def _at_most(text: str, k: int) -> int:
    """min(word count, k + 1), without splitting the whole text when it is long."""
    return len(text.split(maxsplit=k))


def _word_delta(src: str, dst: str, count: int) -> int | None:
    """Exact change of the word count when `count` occurrences of src become dst, or None when it depends
    on the context. When both are non-empty and neither begins nor ends with whitespace, the characters
    around an occurrence start or continue a word exactly as before, so each occurrence changes the count
    by words(dst) - words(src) (str.count and str.replace see the same non-overlapping occurrences)."""
    if src and dst and not (src[0].isspace() or src[-1].isspace() or dst[0].isspace() or dst[-1].isspace()):
        return count * (len(dst.split()) - len(src.split()))
    return None


def _normalize(
    text: str, calls: list[Call], errors: list[str], max_growth: float
) -> tuple[str, list[dict], int, int | None]:
    """Apply the normalizations in order. Returns (text, edits, counted errors, exact word-count change or
    None). A source holds no newline, so replacing in the whole text is replacing line by line, and the
    line count never changes."""
    n_err = 0
    edits: list[dict] = []
    out = text
    limit = int(max_growth * len(text))
    delta: int | None = 0
    for c in calls:
        args = c.args
        if len(args) == 2 and args[0][0] == "source_str":
            src, dst = args[0][1], args[1][1]
        else:  # a hand-made Call
            src, dst = c.arg("source_str"), (c.arg("target_str") if len(args) > 1 else "")
        if src == "" or src == " ":
            # ProX skips both silently (as a one-argument call it would delete every space: never applied here)
            errors.append(f"{c.text}: source_str {src!r} skipped (not counted)")
            continue
        if "\n" in src or "\n" in dst:  # only a hand-made Call can hold one: a program line never does
            errors.append(f"{c.text}: newline in source_str/target_str would renumber lines")
            n_err += 1
            continue
        shrink = len(src) - len(dst)
        if shrink > 0:
            # cannot grow: replace at once, the count follows from the lengths (one pass over the text, not two)
            new = out.replace(src, dst)
            count = (len(out) - len(new)) // shrink
        else:
            count = out.count(src)
            new = None
        if count == 0:
            # ProX does not count this as an error; we record it without counting it
            errors.append(f"{c.text}: source_str not found (no-op, not counted)")
            continue
        if new is None:
            new_len = len(out) - count * shrink
            if new_len > limit:
                # checked before replacing: `e` -> 4096 `e`s twice would otherwise ask for gigabytes
                errors.append(
                    f"{c.text}: would make the text {new_len} chars, over max_growth {max_growth:g} x "
                    f"{len(text)}; refused"
                )
                n_err += 1
                continue
            new = out.replace(src, dst)
        out = new
        if delta is not None:
            d = _word_delta(src, dst, count)
            delta = None if d is None else delta + d
        edits.append({"call": c.text, "op": "normalize", "source": src, "target": dst, "count": count})
    return out, edits, n_err, delta


def _removals(n: int, calls: list[Call], errors: list[str], edits: list[dict]) -> tuple[list[tuple[int, int]], int]:
    """Line ranges to remove from an n-line text, merged and sorted; and the counted errors.
    Errors follow ProX's `merge_intervals`: the ranges as written, sorted by start (stable), a range
    starting at most one past the previous end joins it; each merged range starting past the last line,
    or else ending past it, is one error. The removal itself is each range clamped to the text."""
    spans = []
    clamped = []
    past_end = False
    for c in calls:
        (ka, a), (_, b) = c.args
        if ka != "line_start":  # a hand-made Call with its arguments the other way round
            a, b = b, a
        spans.append((a, b, c))
        if b >= n or a >= n:
            past_end = True
        if b < a:
            errors.append(f"{c.text}: line_start > line_end removes nothing, as in ProX (not counted)")
            continue
        if a < 0:
            errors.append(f"{c.text}: negative line_start read as 0, as ProX (not counted)")
            a = 0
        if a <= b and a < n:
            if b >= n:
                b = n - 1
            clamped.append((a, b))
            edits.append({"call": c.text, "op": "remove_lines", "line_start": a, "line_end": b})
    n_err = 0
    if past_end:  # otherwise no merged range can start or end past the last line: nothing to count
        merged: list[list] = []
        for a, b, c in sorted(spans, key=itemgetter(0)):
            if merged and a <= merged[-1][1] + 1:
                m = merged[-1]
                if b > m[1]:
                    m[1] = b
                m[2].append(c)
            else:
                merged.append([a, b, [c]])
        for a, b, cs in merged:
            if b < n and a < n:
                continue
            what = cs[0].text if len(cs) == 1 else f"lines {a}-{b} (merged from {len(cs)} calls, first {cs[0].text})"
            if a >= n:
                errors.append(f"{what}: line_start beyond the last line ({n - 1})")
            else:
                errors.append(f"{what}: line_end beyond the last line ({n - 1}), clamped")
            n_err += 1
    if len(clamped) > 1:
        clamped.sort()
        out = [clamped[0]]
        for a, b in clamped[1:]:
            pa, pb = out[-1]
            if a <= pb + 1:
                if b > pb:
                    out[-1] = (pa, b)
            else:
                out.append((a, b))
        clamped = out
    return clamped, n_err


def _cut(text: str, n: int, ranges: list[tuple[int, int]], count_removed: bool) -> tuple[str, int]:
    """(text without the lines in `ranges` (merged, sorted, within 0..n-1), words of the removed lines
    if count_removed else 0): the same string as "\n".join of the kept lines. Only the side of the
    text that holds removed lines is split into lines (from the front up to the last removed line, or
    from the back down to the first one, whichever is shorter); the rest stays one string."""
    first, last = ranges[0][0], ranges[-1][1]
    if last + 1 <= n - first:
        parts = text.split("\n", last + 1)  # lines 0..last, then the rest (if any) as one piece
        offset = 0
    else:
        parts = text.rsplit("\n", n - first)  # the head (if any) as one piece, then lines first..n-1
        offset = 1 - first if first else 0
    kept: list[str] = []
    removed = 0
    prev = 0  # index in `parts` where the current kept run starts
    for a, b in ranges:
        kept += parts[prev : a + offset]
        if count_removed:
            removed += len(" ".join(parts[a + offset : b + 1 + offset]).split())
        prev = b + 1 + offset
    kept += parts[prev:]
    return "\n".join(kept), removed


def apply_chunk_programs(text: str, programs: list[Program], limits: DecisionLimits = DEFAULT_LIMITS) -> Outcome:
    """Apply the chunk-stage programs of one document (in chunk order) and decide its status."""
    if len(programs) == 1:
        p = programs[0]
        errors, calls, fatal = list(p.errors), p.calls, p.fatal
    else:
        errors, calls, fatal = [], [], False
        for p in programs:
            errors += p.errors
            calls += p.calls
            fatal |= p.fatal
    k = limits.min_words_kept
    f = limits.min_fraction_kept
    if not text or text.isspace():
        # empty / whitespace-only: nothing to refine, and ProX's ratio would divide by zero
        return Outcome(DROPPED_BY_CHUNK, text, errors + ["empty document"], [])
    if fatal or len(errors) >= limits.max_errors:
        # ignored whatever its calls would do: they are not executed
        return Outcome(DROPPED_BY_CHUNK if _at_most(text, k) <= k else IGNORED, text, errors, [])
    norms: list[Call] = []
    removes: list[Call] = []
    for c in calls:
        name = c.name
        if name == "normalize":
            norms.append(c)
        elif name == "remove_lines":
            removes.append(c)
    if not norms and not removes:
        return Outcome(DROPPED_BY_CHUNK if _at_most(text, k) <= k or f >= 1.0 else KEPT, text, errors, [])
    n_err = len(errors)
    if norms:
        normed, edits, e, delta = _normalize(text, norms, errors, limits.max_growth)
        n_err += e
    else:
        normed, edits, delta = text, [], 0
    ranges: list[tuple[int, int]] = []
    n = text.count("\n") + 1 if removes else 0
    if removes:
        ranges, e = _removals(n, removes, errors, edits)
        n_err += e
    if n_err >= limits.max_errors:
        return Outcome(DROPPED_BY_CHUNK if _at_most(text, k) <= k else IGNORED, text, errors, [])
    if ranges:
        new_text, removed_words = _cut(normed, n, ranges, delta is not None)
    else:
        new_text, removed_words = normed, 0
    if new_text is text:
        w1 = w0 = _at_most(text, k)  # unchanged: only the <= k words rule can apply
        dropped = w1 <= k or f >= 1.0
    elif delta is not None:
        # exact accounting: w1 = w0 + delta - removed_words. Count the original's words only as far as the
        # decision needs: beyond `bound` the text keeps more than k words and more than f of them
        need = removed_words - delta  # w0 - w1
        bound = max(k + need, int(need / (1 - f)) + 1 if f < 1 else 1 << 62, k) + 1
        w0 = _at_most(text, bound)
        w1 = w0 - need
        dropped = w0 <= bound and (w1 <= k or w1 / w0 <= f)
    else:
        # a normalization whose effect on word boundaries depends on its context: a text of L chars has at
        # most (L + 1) // 2 words, so more kept words than max(k, f * that) + 1 decide "not dropped"
        bound = max(k, int(f * ((len(text) + 1) // 2)) + 1)
        w1 = _at_most(new_text, bound)
        dropped = w1 <= bound and (w1 <= k or w1 / len(text.split()) <= f)
    if dropped:
        return Outcome(DROPPED_BY_CHUNK, text, errors, edits)
    if new_text is not text and new_text != text:
        return Outcome(EDITED, new_text, errors, edits)
    return Outcome(KEPT, text, errors, edits)
