"""The ProX executor: unit cases, a property test against a brute-force oracle, and a 100k-program fuzz."""

from __future__ import annotations

import json
import os
import random
import sys
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from curate.refiners.executor import (DROPPED_BY_CHUNK, EDITED, IGNORED, KEPT, STATUSES, Rules, apply_chunk_programs,
                                      doc_decision)
from curate.refiners.program import CHUNK_CALLS, DOC_CALLS, Call, parse_program

WORDS = " ".join(f"w{i}" for i in range(40))
DOC = "\n".join([f"line{i} " + WORDS for i in range(10)])


def run(text: str, *programs: str):  # noqa: ANN201
    return apply_chunk_programs(text, [parse_program(p, CHUNK_CALLS) for p in programs])


def test_remove_and_normalize_order_and_edits() -> None:
    out = run(DOC, 'remove_lines(line_start=1, line_end=2)\nnormalize(source_str="w3 ", target_str="")', "keep_chunk()")
    assert out.status == EDITED
    lines = DOC.split("\n")
    expect = [lines[0]] + lines[3:]
    assert out.text == "\n".join(x.replace("w3 ", "") for x in expect)
    assert out.edits == [
        {"call": 'normalize(source_str="w3 ", target_str="")', "op": "normalize", "source": "w3 ", "target": "", "count": 10},
        {"call": "remove_lines(line_start=1, line_end=2)", "op": "remove_lines", "line_start": 1, "line_end": 2},
    ]
    assert json.loads(out.edits_json()) == out.edits


def test_keep_and_noops() -> None:
    out = run(DOC, "keep_chunk()\nskip_chunk()\nuntouch_doc()")
    assert (out.status, out.text, out.errors, out.edits) == (KEPT, DOC, [], [])


def test_two_errors_ignore_program() -> None:
    out = run(DOC, "remove_lines(line_start=0, line_end=8)\nbogus\nos.system('x')")
    assert out.status == IGNORED and out.text == DOC and out.edits == [] and len(out.errors) == 2
    out = run(DOC, "remove_lines(line_start=0, line_end=3)\nbogus")  # one error: applied
    assert out.status == EDITED


def test_drop_thresholds() -> None:
    assert run(DOC, "remove_lines(line_start=0, line_end=9)").status == DROPPED_BY_CHUNK
    # 1 of 10 lines kept: 41/410 words = 10% > 5%, 41 > 10 words: kept as edited
    assert run(DOC, "remove_lines(line_start=1, line_end=9)").status == EDITED
    big = "\n".join(["x " * 10] * 100)  # 100 lines of 10 words; keep 4 lines = 40 words = 4%
    assert run(big, "remove_lines(line_start=4, line_end=99)").status == DROPPED_BY_CHUNK
    short = "only ten words here one two three four five six"
    out = run(short, "keep_chunk()")
    assert out.status == DROPPED_BY_CHUNK and out.text == short  # ProX's <= 10 words rule


def test_out_of_range_and_not_found() -> None:
    out = run(DOC, "remove_lines(line_start=8, line_end=50)")
    assert out.status == EDITED and out.text == "\n".join(DOC.split("\n")[:8])
    assert out.edits[0]["line_end"] == 9 and "clamped" in out.errors[0]
    out = run(DOC, "remove_lines(line_start=50, line_end=60)")
    assert out.status == KEPT and "beyond the last line" in out.errors[0]
    out = run(DOC, 'normalize(source_str="not there", target_str="x")')
    assert out.status == KEPT and "not found" in out.errors[0]
    out = run(DOC, 'normalize(source_str="not there")\nnormalize(source_str="nor this")\nkeep_chunk()')
    assert out.status == KEPT  # not-found is recorded but not counted towards the ignore threshold
    out = run(DOC, 'normalize(source_str="w1", target_str="a\\nb")\nremove_lines(line_start=5, line_end=2)')
    assert out.status == IGNORED and len(out.errors) == 2


def test_empty_and_whitespace_docs() -> None:
    for text in ["", "   ", "\n\n\t\n"]:
        out = run(text, "remove_lines(line_start=0, line_end=0)")
        assert out.status == DROPPED_BY_CHUNK and out.text == text and "empty document" in out.errors[-1]


def test_doc_decision() -> None:
    assert doc_decision(parse_program("drop_doc()", DOC_CALLS)) == (True, [])
    assert doc_decision(parse_program("keep_doc()\ndrop_doc()", DOC_CALLS))[0] is False
    drop, errs = doc_decision(parse_program("drop it please", DOC_CALLS))
    assert drop is False and len(errs) == 1  # ProX drops on any "drop" substring; we need a valid call


# -- property test against a brute-force oracle ---------------------------------------------------------

def oracle(text: str, calls: list[Call], n_parse_errors: int, rules: Rules = Rules()) -> tuple[str, str]:
    """Whole-text str.replace (as ProX) then a set of removed line numbers; our own decision rules."""
    if not text.split():
        return DROPPED_BY_CHUNK, text
    errs = n_parse_errors
    lines0 = text.split("\n")
    n = len(lines0)
    whole = text
    for c in calls:
        if c.name == "normalize":
            s, t = c.arg("source_str"), c.arg("target_str")
            if not s.strip() or "\n" in s or "\n" in t:
                errs += 1
            else:
                whole = whole.replace(s, t)
    removed: set[int] = set()
    for c in calls:
        if c.name == "remove_lines":
            a, b = c.arg("line_start"), c.arg("line_end")
            if a < 0 or b < a or a >= n:
                errs += 1
                continue
            if b >= n:
                errs += 1
                b = n - 1
            removed.update(range(a, b + 1))
    if errs >= rules.max_errors:
        return (DROPPED_BY_CHUNK if len(text.split()) <= rules.min_words_kept else IGNORED), text
    new = "\n".join(x for i, x in enumerate(whole.split("\n")) if i not in removed)
    w0, w1 = len(text.split()), len(new.split())
    if w1 <= rules.min_words_kept or w1 / w0 <= rules.min_fraction_kept:
        return DROPPED_BY_CHUNK, text
    return (EDITED if new != text else KEPT), new


_line = st.lists(st.sampled_from(["ab", "cd", "ef", "ab cd", " ", "x", "é", "\t"]), min_size=0, max_size=12).map("".join)
_text = st.lists(_line, min_size=1, max_size=25).map("\n".join)
_call = st.one_of(
    st.builds(lambda a, b: f"remove_lines(line_start={a}, line_end={b})", st.integers(-2, 30), st.integers(-2, 30)),
    st.builds(lambda a, b: f"remove_lines({a}, {b})", st.integers(0, 30), st.integers(0, 30)),
    st.builds(lambda s, t: f"normalize(source_str={s!r}, target_str={t!r})",
              st.sampled_from(["ab", "cd ", "x", " ", "", "zz", "a\nb", "é"]), st.sampled_from(["", "Q", "ab", "\n"])),
    st.sampled_from(["keep_chunk()", "skip_chunk()", "garbage(", "drop_doc()", "os.path()", "remove_lines(x, 1)"]),
)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(_text, st.lists(st.lists(_call, max_size=5), min_size=1, max_size=3))
def test_executor_matches_oracle(text: str, chunk_calls: list[list[str]]) -> None:
    programs = [parse_program("\n".join(cs), CHUNK_CALLS) for cs in chunk_calls]
    out = apply_chunk_programs(text, programs)
    calls = [c for p in programs for c in p.calls]
    n_parse = sum(len(p.errors) for p in programs)
    assert (out.status, out.text) == oracle(text, calls, n_parse)
    # edits are enough to redo the refinement from the original text (what `curate diff` relies on)
    if out.status == EDITED:
        lines = text.split("\n")
        for e in out.edits:
            if e["op"] == "normalize":
                lines = [x.replace(e["source"], e["target"]) for x in lines]
        gone = {i for e in out.edits if e["op"] == "remove_lines" for i in range(e["line_start"], e["line_end"] + 1)}
        assert "\n".join(x for i, x in enumerate(lines) if i not in gone) == out.text


# -- fuzz: >= 100k programs, nothing escapes, nothing happens, nothing is lost -------------------------------

SENTINEL = "/tmp/curate_prox_fuzz_sentinel"
HOSTILE = [
    "__import__('os').system('touch " + SENTINEL + "')",
    "open('" + SENTINEL + "', 'w').write('x')",
    "exec(\"open('" + SENTINEL + "','w')\")", "eval('1')", "breakpoint()", "exit()", "globals()",
    "().__class__.__bases__[0].__subclasses__()", "remove_lines.__globals__", "normalize.__code__",
    "remove_lines(line_start=" + "9" * 5000 + ", line_end=1)", "remove_lines(line_start=10**10**10, line_end=1)",
    "remove_lines(line_start=" + "(" * 500 + "1" + ")" * 500 + ", line_end=2)", "[" * 10000, "-" * 5000 + "1",
    "normalize(source_str='" + "a" * 1_000_000 + "', target_str='')", "x" * 2_000_000,
    'normalize(source_str="unbalanced, target_str="")', "normalize(source_str='''", "keep_chunk(",
    "remove_lines(line_start=0, line_end=2)\x00", "ｒｅｍｏｖｅ_ｌｉｎｅｓ(line_start=0, line_end=1)",
    "remove_lines(line_start=٣, line_end=٤)", "remove\u200b_lines(line_start=0, line_end=1)", "normalize(source_str='\ud800')",
    "normalize(source_str='\u202eevil', target_str='')", "drop_doc() if True else keep_doc()", "lambda: drop_doc()",
    "[drop_doc() for _ in range(10**9)]", "async def f(): pass", "await drop_doc()", "yield 1", "del remove_lines",
    "remove_lines(line_start=0, line_end=1) # comment", "\\\nremove_lines(0, 1)", "remove_lines(0,\n1)",
    "keep_chunk()\n" * 1000, "normalize(*['a'])", "normalize(**{'source_str': 'a'})", "f'{__import__(\"os\")}'",
]
TOKENS = ["remove_lines", "normalize", "keep_chunk", "drop_doc", "(", ")", "=", ",", "'", '"', "line_start", "line_end",
          "source_str", "target_str", "0", "1", "42", "-7", "999999", " ", "\n", ".", "[", "]", "__import__", "os",
          "lambda", ":", "*", "**", "f'", "\\", "#", "é", "\u200b", "\x00", "{", "}", ";", "import", "1e9", "True"]
VALID = ["remove_lines(line_start=1, line_end=3)", 'normalize(source_str="line2", target_str="LINE")',
         "keep_chunk()", "remove_lines(0, 0)", "normalize('w5 ', '')"]


def _programs(n: int, rng: random.Random):  # noqa: ANN202
    for i in range(n):
        k = i % 3
        if k == 0:
            yield "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 30)))
        elif k == 1:
            s = list("\n".join(rng.choice(VALID) for _ in range(rng.randint(1, 4))))
            for _ in range(rng.randint(1, 4)):
                op, pos = rng.random(), rng.randrange(len(s) + 1)
                if op < 0.4 and s:
                    del s[min(pos, len(s) - 1)]
                elif op < 0.8:
                    s.insert(pos, rng.choice("()=,'\"\\\n0123456789 _.[]{}*xé\u200b"))
                else:
                    s.insert(pos, rng.choice(TOKENS))
            yield "".join(s)
        else:
            yield HOSTILE[(i // 3) % len(HOSTILE)]


def test_fuzz_100k_programs() -> None:
    if os.path.exists(SENTINEL):
        os.remove(SENTINEL)
    rng = random.Random(1234)
    text = DOC
    modules = set(sys.modules)
    times: list[float] = []
    n = 0
    statuses: dict[str, int] = {}
    for prog in _programs(100_002, rng):
        t0 = time.perf_counter()
        out = apply_chunk_programs(text, [parse_program(prog, CHUNK_CALLS)])
        dt = time.perf_counter() - t0
        times.append(dt)
        n += 1
        assert out.status in STATUSES
        statuses[out.status] = statuses.get(out.status, 0) + 1
        # never lost: dropped / ignored / kept docs keep their text; edits only remove or rewrite lines
        if out.status != EDITED:
            assert out.text == text
        else:
            assert out.text and len(out.text.split("\n")) <= len(text.split("\n"))
    assert n >= 100_000
    assert not os.path.exists(SENTINEL)
    assert set(sys.modules) == modules  # nothing imported behind our back
    # bounded time: the machine is shared, so the hard bound is loose and the percentile tight
    times.sort()
    assert times[-1] < 2.0, f"slowest program took {times[-1]:.3f}s"
    assert times[int(len(times) * 0.999)] < 0.05, f"p99.9 {times[int(len(times) * 0.999)]:.4f}s"
    # the mix exercises every outcome the chunk stage can give
    assert {KEPT, EDITED, IGNORED} <= set(statuses), statuses
