"""Apply parsed ProX programs to a document and decide its fate.

Order and rules (GAIR-NLP/ProX `utils/chunk_utils.py::execute_meta_operations`, `doc_utils.py`):
1. Doc stage: a valid `drop_doc()` drops the document (`dropped_by_doc`); otherwise it goes on.
2. Chunk stage: all chunks' calls in order. Errors are counted; with `max_errors` (2) or more
   the program is ignored and the original text kept (`program_ignored`).
3. Otherwise normalizations are applied first (each `source_str` replaced by `target_str`
   everywhere, in program order), then line removals (line numbers of the original text).
4. The result is dropped (`dropped_by_chunk`) when it keeps <= 5% of the original's words or
   <= 10 words; else `edited` if the text changed, `kept` if not.

Line numbers stay those of the original document because normalizations may not contain a
newline (rejected as an error): the text is a list of lines throughout. See the README for every
difference from the reference executor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .program import Call, Program

KEPT, DROPPED_BY_DOC, DROPPED_BY_CHUNK, EDITED, IGNORED = "kept", "dropped_by_doc", "dropped_by_chunk", "edited", "program_ignored"
STATUSES = (KEPT, DROPPED_BY_DOC, DROPPED_BY_CHUNK, EDITED, IGNORED)


@dataclass
class Rules:
    max_errors: int = 2  # a chunk program with this many errors or more is ignored
    min_fraction_kept: float = 0.05  # drop when the kept share of words is <= this
    min_words_kept: int = 10  # drop when this many words or fewer remain


@dataclass
class Outcome:
    status: str
    text: str
    errors: list[str] = field(default_factory=list)
    edits: list[dict] = field(default_factory=list)

    @property
    def dropped(self) -> bool:
        return self.status in (DROPPED_BY_DOC, DROPPED_BY_CHUNK)

    def edits_json(self) -> str:
        return json.dumps(self.edits, ensure_ascii=False)


def doc_decision(program: Program | None) -> tuple[bool, list[str]]:
    """(drop?, errors) for a doc-stage program; the first valid decision call wins."""
    if program is None:
        return False, []
    for call in program.calls:
        if call.name == "drop_doc":
            return True, list(program.errors)
        if call.name == "keep_doc":
            break
    return False, list(program.errors)


def _apply_calls(text: str, calls: list[Call], errors: list[str]) -> tuple[str, list[str] | None, bytearray | None, list[dict], int]:
    """Normalizations then removals. Returns (normalized text, its lines or None, removed-line mask or
    None, edits, counted errors). A source without a newline cannot span lines, so replacing in the
    whole text is the same as replacing line by line, and the line count never changes."""
    n_err = 0
    edits: list[dict] = []
    out = text
    for c in calls:
        if c.name != "normalize":
            continue
        src, dst = c.arg("source_str"), c.arg("target_str")
        if not src.strip():
            errors.append(f"{c.text}: empty or whitespace-only source_str")
            n_err += 1
            continue
        if "\n" in src or "\n" in dst:
            errors.append(f"{c.text}: newline in source_str/target_str would renumber lines")
            n_err += 1
            continue
        count = out.count(src)
        if count == 0:
            # ProX does not count this as an error; we record it without counting it
            errors.append(f"{c.text}: source_str not found (no-op, not counted)")
            continue
        out = out.replace(src, dst)
        edits.append({"call": c.text, "op": "normalize", "source": src, "target": dst, "count": count})
    removes = [c for c in calls if c.name == "remove_lines"]
    if not removes:
        return out, None, None, edits, n_err
    n = text.count("\n") + 1
    remove = bytearray(n)
    any_removed = False
    for c in removes:
        a, b = c.arg("line_start"), c.arg("line_end")
        if a < 0 or b < a:
            errors.append(f"{c.text}: invalid line range")
            n_err += 1
            continue
        if a >= n:
            errors.append(f"{c.text}: line_start beyond the last line ({n - 1})")
            n_err += 1
            continue
        if b >= n:
            # ProX counts this as an error and clamps the range; so do we
            errors.append(f"{c.text}: line_end beyond the last line ({n - 1}), clamped")
            n_err += 1
            b = n - 1
        remove[a : b + 1] = b"\x01" * (b + 1 - a)
        any_removed = True
        edits.append({"call": c.text, "op": "remove_lines", "line_start": a, "line_end": b})
    if not any_removed:
        return out, None, None, edits, n_err
    return out, out.split("\n"), remove, edits, n_err


def _at_most(text: str, k: int) -> int:
    """min(word count, k + 1), without splitting the whole text when it is long."""
    return len(text.split(maxsplit=k))


def apply_chunk_programs(text: str, programs: list[Program], rules: Rules = Rules()) -> Outcome:
    """Apply the chunk-stage programs of one document (in chunk order) and decide its status."""
    errors: list[str] = []
    calls: list[Call] = []
    n_err = 0
    fatal = False
    for p in programs:
        errors.extend(p.errors)
        n_err += len(p.errors)
        fatal |= p.fatal
        calls.extend(p.calls)
    k = rules.min_words_kept
    w_small = _at_most(text, k)  # exact when the doc has <= k words
    if w_small == 0:
        # empty / whitespace-only: nothing to refine, and ProX's ratio would divide by zero
        return Outcome(DROPPED_BY_CHUNK, text, errors + ["empty document"], [])
    effective = [c for c in calls if c.name in ("normalize", "remove_lines")]
    if effective:
        normed, lines, mask, edits, n_apply_err = _apply_calls(text, effective, errors)
        n_err += n_apply_err
    else:
        normed, lines, mask, edits = text, None, None, []
    if fatal or n_err >= rules.max_errors:
        return Outcome(DROPPED_BY_CHUNK if w_small <= k else IGNORED, text, errors, [])
    if lines is None:
        new_text = normed
    else:
        assert mask is not None
        new_text = "\n".join([x for x, r in zip(lines, mask) if not r])
    if new_text is text:
        w1 = w0 = w_small  # unchanged: only the <= k words rule can apply
    elif normed is text and lines is not None and mask is not None:
        # removals only: words add up over lines, so w0 = w1 + words of the removed lines; count the
        # kept words only as far as the decision needs (exact below the bound, else "large enough")
        removed_words = sum(len(x.split()) for x, r in zip(lines, mask) if r)
        f = rules.min_fraction_kept
        bound = max(k, int(f * removed_words / (1 - f)) + 1 if f < 1 else 1 << 62)
        w1 = _at_most(new_text, bound)
        w0 = w1 + removed_words
    else:
        w0, w1 = len(text.split()), len(new_text.split())
    if w1 <= k or w1 / w0 <= rules.min_fraction_kept:
        return Outcome(DROPPED_BY_CHUNK, text, errors, edits)
    if new_text != text:
        return Outcome(EDITED, new_text, errors, edits)
    return Outcome(KEPT, text, errors, edits)
