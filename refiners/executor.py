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


def _apply_calls(lines: list[str], calls: list[Call], errors: list[str]) -> tuple[list[str], list[dict], int]:
    """Normalizations then removals over `lines` (a copy). Returns (lines, edits, counted errors)."""
    n_err = 0
    edits: list[dict] = []
    norms = [c for c in calls if c.name == "normalize"]
    removes = [c for c in calls if c.name == "remove_lines"]
    out = lines
    if norms:
        out = list(lines)
        for c in norms:
            src, dst = c.arg("source_str"), c.arg("target_str")
            if not src.strip():
                errors.append(f"{c.text}: empty or whitespace-only source_str")
                n_err += 1
                continue
            if "\n" in src or "\n" in dst:
                errors.append(f"{c.text}: newline in source_str/target_str would renumber lines")
                n_err += 1
                continue
            count = 0
            for i, line in enumerate(out):
                if src in line:
                    count += line.count(src)
                    out[i] = line.replace(src, dst)
            if count == 0:
                # ProX does not count this as an error; we record it without counting it
                errors.append(f"{c.text}: source_str not found (no-op, not counted)")
                continue
            edits.append({"call": c.text, "op": "normalize", "source": src, "target": dst, "count": count})
    n = len(lines)
    remove = bytearray(n)
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
        edits.append({"call": c.text, "op": "remove_lines", "line_start": a, "line_end": b})
    if removes and any(remove):
        out = [line for line, r in zip(out, remove) if not r]
    return out, edits, n_err


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
    words_before = len(text.split())
    if words_before == 0:
        # empty / whitespace-only: nothing to refine, and ProX's ratio would divide by zero
        return Outcome(DROPPED_BY_CHUNK, text, errors + ["empty document"], [])
    lines = text.split("\n")
    effective = [c for c in calls if c.name in ("normalize", "remove_lines")]
    new_lines, edits, n_apply_err = _apply_calls(lines, effective, errors) if effective else (lines, [], 0)
    n_err += n_apply_err
    if fatal or n_err >= rules.max_errors:
        status = DROPPED_BY_CHUNK if words_before <= rules.min_words_kept else IGNORED
        return Outcome(status, text, errors, [])
    new_text = "\n".join(new_lines) if new_lines is not lines else text
    words_after = len(new_text.split()) if new_lines is not lines else words_before
    if words_after <= rules.min_words_kept or words_after / words_before <= rules.min_fraction_kept:
        return Outcome(DROPPED_BY_CHUNK, text, errors, edits)
    if new_text != text:
        return Outcome(EDITED, new_text, errors, edits)
    return Outcome(KEPT, text, errors, edits)
