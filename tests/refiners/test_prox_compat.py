"""Differential test: our parser + program applier against a ProX-compatible reading, on 4,000 real (document, program) pairs.

`prox_refine` below re-implements what GAIR-NLP/ProX `utils/chunk_utils.py::execute_meta_operations`
does (written from its behaviour, not copied): the chunk outputs joined by "\\n", each line read by
raw slicing (`startswith`, the first "(" and the first ")", `split(",")`, `split("=")[1]`,
`strip('"')`, `int()`), a missing ")" counted as an error and the slice cut one character short,
a line that is neither `remove_lines...` nor `normalize...` silently ignored, normalizations on the
whole text in order, then the line removals, past-the-end errors counted per merged range,
and its decision rule (thresholds 0.0 / 0.95, 2 errors, the <= 10-word rule).

Documents: the 2,000 real web documents of tests/data (C4 realnewslike, C4 prefix-completion,
Dolma CC); one in eight gets one real-world StackExchange / LaTeX line inserted (`$\\begingroup$`
comments, inline math), since web text from C4 has almost no backslashes. Programs: per document,
two programs written with a fixed seed the way a refiner writes them: the `boilerplate` backend's
program for each 30-line chunk (remove_lines runs, HTML-entity normalizes) and model-like calls:
normalizes of real substrings of the document (anchored on quotes, backslashes, commas, `=`, `)`,
`$` half of the time), one-argument normalizes, LaTeX removals, remove_lines ranges (in range,
past the end, beyond the end, negative, reversed, 3-digit zero-padded as the prompt shows them),
keep_chunk(), a few single-quoted / positional calls, and 3% of outputs cut mid-line (max_tokens).

The final texts ("" for a dropped document) must agree except for the intentional differences in
EXPECTED, each counted (pairs per kind); docs/stages/prox.md ("Where we differ on purpose") lists the same figures.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import Counter

from curate_testing import DATA

from curate.refiners.apply import apply_chunk_programs
from curate.refiners.backends.boilerplate import chunk_program
from curate.refiners.program import CHUNK_CALLS, Rejected, parse_line, parse_program

LATEX = [
    r"$\begingroup$ Welcome to MSE. Please show what you have tried so far. $\endgroup$ – user1729 Mar 3 '15 at 10:02",
    r"$\begingroup$ Does $\int_0^1 f(x)\,dx = 1$ hold for every such $f$? $\endgroup$ – J. W. Tanner",
    r"Let $\alpha \in (0, 1)$ and define $f(x) = x^\alpha$ for $x \geq 0$.",
    r"$$\begin{align} a &= b + c \\ d &= \frac{e}{f} \end{align}$$",
    r"$\begingroup$ @Hans \"tends to\" means $\lim_{n\to\infty}$, see the edit. $\endgroup$",
]
SPECIAL = '"\\,=)$'

# kind -> pairs whose final texts differ for that reason (a pair may count under two kinds). Every one is a
# ProX misreading we do not reproduce, or a rule we chose; docs/stages/prox.md lists them.
EXPECTED = {
    "')' inside a string (ProX cuts the call at the first ')')": 50,
    "',' inside a string (ProX: three or more pieces, call skipped)": 351,
    "'=' inside a string (ProX keeps only the text before it)": 3,
    "'\"' at a string's end (ProX strips every quote there)": 5,
    "single-quoted strings (ProX keeps the quotes in the text)": 26,
    "positional arguments (ProX: error)": 11,
    'one-argument normalize(source_str=" ") (ProX deletes every space)': 26,
    "truncated last line (ProX: 2 errors and a partial call applied)": 21,
    "ignored program whose processed text has <= 10 words (ProX drops)": 1,
}


# -- the ProX-compatible reading -----------------------------------------------------------------------------


def _prox_line(op: str) -> tuple[tuple | None, int]:
    """One program line as ProX's execute_operations reads it: (effect, errors counted)."""
    if op.startswith("remove_lines") and "all=True" not in op:
        if "(" not in op:
            return None, 1
        start, err = op.index("(") + 1, 0
        if ")" in op:
            end = op.index(")")
        else:
            end, err = -1, 1
        parts = op[start:end].split(",")
        try:
            a, b = int(parts[0].split("=")[1]), int(parts[1].split("=")[1])
        except (IndexError, ValueError):
            return None, err + 1
        return ("rm", a, b), err
    if op.startswith("normalize"):
        if "(" not in op:
            return None, 1
        start, err = op.index("(") + 1, 0
        if ")" in op:
            end = op.index(")")
        else:
            end, err = -1, 1
        parts = op[start:end].split(",")
        try:
            if len(parts) == 1:
                return ("norm", parts[0].split("=")[1].strip('"'), ""), err
            if len(parts) == 2:
                s, t = parts[0].split("=")[1].strip('"'), parts[1].split("=")[1].strip('"')
                return (None if s in (" ", "") else ("norm", s, t)), err
        except IndexError:
            return None, err + 1
        return None, err  # three or more pieces: neither branch, nothing happens
    if op.startswith("remove_lines"):
        return ("all",), 0
    return None, 0  # keep_chunk(), anything else: ignored, not an error


def prox_refine(text: str, program: str) -> tuple[str, int, int]:
    """(final text, "" when dropped; errors; words of the processed text) as ProX computes them."""
    body, n_err = text, 0
    removed: set[int] = set()
    spans = []
    for op in program.strip(" ").split("\n"):
        eff, e = _prox_line(op)
        n_err += e
        if eff is None:
            continue
        if eff[0] == "norm":
            body = body.replace(eff[1], eff[2])
        elif eff[0] == "rm":
            spans.append((eff[1], eff[2]))
            removed.update(range(eff[1], eff[2] + 1))
        else:
            removed = set(range(len(text.split("\n"))))
    lines = body.split("\n")
    spans.sort(key=lambda x: x[0])
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    n_err += sum(1 for a, b in merged if a >= len(lines) or b >= len(lines))
    processed = "\n".join(x for i, x in enumerate(lines) if i not in removed)
    w1, w0 = len(processed.split()), len(text.split())
    if w1 / w0 <= 0.05 and n_err < 2:
        return "", n_err, w1
    if w1 <= 10:
        return "", n_err, w1
    if n_err < 2:
        return processed, n_err, w1
    return text, n_err, w1


def _our_line(line: str) -> tuple[tuple | None, int]:
    line = line.strip()
    if not line:
        return None, 0
    try:
        c = parse_line(line)
    except Rejected:
        return None, 1
    if c.name not in CHUNK_CALLS:
        return None, 1
    if c.name == "remove_lines":
        return ("rm", c.arg("line_start"), c.arg("line_end")), 0
    if c.name == "normalize":
        s, t = c.arg("source_str"), c.arg("target_str")
        return (None if s in (" ", "") else ("norm", s, t)), 0
    return None, 0


def _kind(line: str) -> str:
    """Why ProX reads this line differently (checked in the order ProX's slicing trips on it)."""
    s = line.strip()
    if not s.endswith(")"):
        return "truncated last line (ProX: 2 errors and a partial call applied)"
    try:
        c = parse_line(s)
    except Rejected:
        return f"rejected by us: {s[:40]}"
    head = s[s.index("(") + 1 :].lstrip()
    if c.name == "normalize":
        if head.startswith(("'", "source_str='", "target_str='")):
            return "single-quoted strings (ProX keeps the quotes in the text)"
        if head.startswith('"'):
            return "positional arguments (ProX: error)"
        a, b = c.arg("source_str"), c.arg("target_str")
        if a == " " and "target_str" not in s:
            return 'one-argument normalize(source_str=" ") (ProX deletes every space)'
        if ")" in a + b:
            return "')' inside a string (ProX cuts the call at the first ')')"
        if "," in a + b:
            return "',' inside a string (ProX: three or more pieces, call skipped)"
        if "=" in a + b:
            return "'=' inside a string (ProX keeps only the text before it)"
        if any(x[:1] == '"' or x[-1:] == '"' for x in (a, b)):
            return "'\"' at a string's end (ProX strips every quote there)"
    elif c.name == "remove_lines" and "=" not in head:
        return "positional arguments (ProX: error)"
    return f"unexplained: {s[:60]}"


# -- real documents and realistic programs -----------------------------------------------------------------------


def documents() -> list[str]:
    docs = []
    with open(DATA / "c4-realnewslike-500" / "c4.json") as f:
        docs += [j["prompt"] + j["natural_text"] for j in map(json.loads, f)]
    with open(DATA / "c4-prefix-completion-1480" / "c4.jsonl") as f:
        docs += [j["prefix"] + j["gold_completion"] for j in map(json.loads, f)]
    for p in sorted((DATA / "dolma-cc-2019").glob("*.jsonl.gz")):
        with gzip.open(p, "rt") as f:
            docs += [json.loads(x)["text"] for x in f]
    rng = random.Random(11)
    out = []
    for i, d in enumerate(docs):
        if i % 8 == 3:
            lines = d.split("\n")
            lines.insert(rng.randint(0, len(lines)), rng.choice(LATEX))
            d = "\n".join(lines)
        out.append(d)
    return out


def _span(rng: random.Random, line: str) -> str:
    """A substring of a real line as a model copies it; half the time around a character ProX trips on."""
    hits = [i for i, ch in enumerate(line) if ch in SPECIAL]
    if hits and rng.random() < 0.5:
        i = rng.choice(hits)
        return line[max(0, i - rng.randint(0, 25)) : i + 1 + rng.randint(0, 25)]
    a = rng.randrange(len(line))
    return line[a : a + rng.randint(3, 40)]


def _target(rng: random.Random, src: str) -> str:
    r = rng.random()
    if r < 0.55:
        return ""
    if r < 0.7:
        return src.replace("\\", "").replace("$", "")
    if r < 0.8:
        return src.replace('"', "'")
    if r < 0.9:
        return src.strip().capitalize()
    return " "


def _calls(rng: random.Random, lines: list[str], first: int, last: int, n: int) -> list[str]:
    out: list[str] = []
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.34:
            a = rng.randint(first, last)
            out.append(f"remove_lines(line_start={a}, line_end={min(last, a + rng.randint(0, 3))})")
        elif r < 0.39:
            a = rng.randint(first, last)
            out.append(f"remove_lines(line_start={a:03d}, line_end={min(last, a + rng.randint(0, 2)):03d})")
        elif r < 0.45 and last == n - 1:
            out.append(f"remove_lines(line_start={rng.randint(first, last)}, line_end={last + rng.randint(1, 30)})")
        elif r < 0.47:
            a = n + rng.randint(0, 20)
            out.append(f"remove_lines(line_start={a}, line_end={a + rng.randint(0, 5)})")
        elif r < 0.50:
            out.append(f"remove_lines(line_start={-rng.randint(1, 3)}, line_end={rng.randint(-2, min(3, last))})")
        elif r < 0.52:
            a = rng.randint(first, last)
            out.append(f"remove_lines(line_start={a + rng.randint(1, 4)}, line_end={a})")
        elif r < 0.85:
            cand = [x for x in lines[first : last + 1] if x.strip()]
            if not cand:
                continue
            src = _span(rng, rng.choice(cand))
            if not src.strip():
                continue
            q = rng.random()
            if q < 0.08:
                out.append(f'normalize(source_str="{src}")')
            elif q < 0.10:
                out.append(f"normalize(source_str='{src}', target_str='')")
            elif q < 0.11:
                out.append(f'normalize("{src}", "")')
            else:
                out.append(f'normalize(source_str="{src}", target_str="{_target(rng, src)}")')
        elif r < 0.93:
            body = "\n".join(lines[first : last + 1])
            for tok in (r"$\begingroup$", r"$\endgroup$", r"\,", r"\frac"):
                if tok in body:
                    out.append(f'normalize(source_str="{tok}", target_str="")')
                    break
            else:
                out.append("keep_chunk()")
        elif r < 0.935:
            out.append('normalize(source_str=" ")')
        else:
            out.append("keep_chunk()")
    return out


def pairs() -> list[tuple[str, list[str]]]:
    rng = random.Random(20241)
    out = []
    for _d, text in enumerate(documents()):
        lines = text.split("\n")
        n = len(lines)
        for variant in range(2):
            progs = []
            for first in range(0, n, 30):
                last = min(n, first + 30) - 1
                fixed = chunk_program([(i, lines[i]) for i in range(first, last + 1)])
                if variant == 0 and rng.random() < 0.5:
                    calls = [] if fixed == "keep_chunk()" else fixed.split("\n")
                    calls += _calls(rng, lines, first, last, n) if rng.random() < 0.5 else []
                else:
                    calls = ["keep_chunk()"] if rng.random() < 0.3 else _calls(rng, lines, first, last, n)
                progs.append("\n".join(calls) or "keep_chunk()")
            if rng.random() < 0.03:  # generation cut at max_tokens, mid-line
                last_prog = progs[-1]
                cut = rng.randint(max(1, last_prog.rfind("\n") + 2), max(2, len(last_prog) - 1))
                progs[-1] = last_prog[:cut]
            out.append((text, progs))
    return out


# -- the test -------------------------------------------------------------------------------------------


def test_matches_prox_except_listed_differences() -> None:
    ps = pairs()
    assert len(ps) >= 4000
    # the mix holds every form docs/stages/prox.md names, in numbers (pairs holding each)
    features: Counter[str] = Counter()
    for text, progs in ps:
        n = text.count("\n") + 1
        seen = set()
        for line in "\n".join(progs).split("\n"):
            eff, _ = _our_line(line)
            if line.startswith("normalize") and "\\" in line:
                seen.add("backslash")
            if "$\\begingroup$" in line:
                seen.add("latex")
            if line.startswith('normalize(source_str="') and line.count('"') > 4:
                seen.add("quote inside")
            if line.startswith("normalize(") and "target_str" not in line and line.endswith(")"):
                seen.add("one-argument")
            if line == "keep_chunk()":
                seen.add("keep_chunk")
            if eff and eff[0] == "rm":
                a, b = eff[1], eff[2]
                seen.add(
                    "negative"
                    if a < 0
                    else "reversed"
                    if b < a
                    else "beyond the end"
                    if a >= n
                    else "past the end"
                    if b >= n
                    else "in range"
                )
                if re.search(r"=0[0-9]", line):
                    seen.add("zero-padded")
        features.update(seen)
    minimum = {
        "backslash": 60,
        "latex": 30,
        "quote inside": 30,
        "one-argument": 120,
        "keep_chunk": 1500,
        "negative": 120,
        "reversed": 60,
        "beyond the end": 70,
        "past the end": 200,
        "in range": 1000,
        "zero-padded": 180,
    }
    assert all(features[k] >= v for k, v in minimum.items()), features
    kinds: Counter[str] = Counter()
    n_diff = n_edited = 0
    for text, progs in ps:
        program = "\n".join(progs)
        want, prox_err, prox_w1 = prox_refine(text, program)
        out = apply_chunk_programs(text, [parse_program(p, CHUNK_CALLS, f"chunk {c}: ") for c, p in enumerate(progs)])
        got = "" if out.dropped else out.text
        n_edited += got not in ("", text)
        if got == want:
            continue
        n_diff += 1
        why = {_kind(line) for line in program.split("\n") if _prox_line(line) != _our_line(line)}
        if not why and prox_err >= 2 and prox_w1 <= 10:
            why = {"ignored program whose processed text has <= 10 words (ProX drops)"}
        assert why, f"unexplained difference: program {program!r}"
        kinds.update(why)
    print(f"\n{len(ps)} pairs, {n_edited} edited by us, {n_diff} differ from ProX:")
    for k, v in kinds.most_common():
        print(f"  {v:5d}  {k}")
    assert not [k for k in kinds if k not in EXPECTED], kinds
    assert dict(kinds) == {k: v for k, v in EXPECTED.items() if v}, (
        "update EXPECTED and docs/stages/prox.md (Where we differ on purpose)"
    )
