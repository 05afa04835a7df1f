"""The ProX program parser: whitelisted calls only, literal arguments only, nothing evaluated."""

from __future__ import annotations

import pytest

from curate.refiners.program import CHUNK_CALLS, DOC_CALLS, MAX_CALLS, MAX_PROGRAM_CHARS, Call, Rejected, parse_line, parse_program


@pytest.mark.parametrize("line, name, args", [
    ("remove_lines(line_start=3, line_end=7)", "remove_lines", (("line_start", 3), ("line_end", 7))),
    ("remove_lines(3, 7)", "remove_lines", (("line_start", 3), ("line_end", 7))),
    ("remove_lines(3, line_end=7)", "remove_lines", (("line_start", 3), ("line_end", 7))),
    ("remove_lines(line_end=7, line_start=3)", "remove_lines", (("line_start", 3), ("line_end", 7))),
    ("remove_lines(line_start=3,line_end=7)", "remove_lines", (("line_start", 3), ("line_end", 7))),
    ("remove_lines(line_start=-1, line_end=2)", "remove_lines", (("line_start", -1), ("line_end", 2))),
    ('normalize(source_str="a, b) = c", target_str="")', "normalize", (("source_str", "a, b) = c"), ("target_str", ""))),
    ("normalize(source_str='single', target_str='quoted')", "normalize", (("source_str", "single"), ("target_str", "quoted"))),
    ('normalize("x")', "normalize", (("source_str", "x"), ("target_str", ""))),
    ('normalize("x\\ny", "z")', "normalize", (("source_str", "x\ny"), ("target_str", "z"))),
    ("drop_doc()", "drop_doc", ()),
    ("keep_chunk()", "keep_chunk", ()),
    ("untouch_doc()", "untouch_doc", ()),
])
def test_accepts(line: str, name: str, args: tuple) -> None:
    assert parse_line(line) == Call(name, args)


def test_fast_path_equals_ast_path() -> None:
    from curate.refiners.program import _call_from_ast

    for line in ["remove_lines(line_start=0, line_end=0)", "remove_lines(line_start=12, line_end=999999999)",
                 "remove_lines(line_start=1,line_end=2)", "keep_chunk()", "drop_doc()"]:
        assert parse_line(line) == _call_from_ast(line)


@pytest.mark.parametrize("line, reason", [
    ("__import__('os').system('echo hi')", "callee must be a plain name"),
    ("__import__('os')", "unknown function"),
    ("os.system('x')", "callee must be a plain name"),
    ("remove_lines(line_start=x, line_end=2)", "must be a literal"),
    ("remove_lines(line_start=a.b, line_end=2)", "must be a literal"),
    ("remove_lines(line_start=l[0], line_end=2)", "must be a literal"),
    ("remove_lines(line_start=int('3'), line_end=2)", "must be a literal"),
    ("normalize(source_str=(lambda: 1)(), target_str='')", "must be a literal"),
    ("normalize(source_str=[c for c in 'ab'], target_str='')", "must be a literal"),
    ("normalize(source_str=f'{x}', target_str='')", "f-string"),
    ("normalize(source_str=b'x', target_str='')", "type bytes"),
    ("remove_lines(line_start=1.5, line_end=2)", "type float"),
    ("remove_lines(line_start=True, line_end=2)", "type bool"),
    ("remove_lines(*a)", "starred"),
    ("remove_lines(**a)", "** argument"),
    ("import os", "statement Import"),
    ("x = drop_doc()", "statement Assign"),
    ("drop_doc(); keep_doc()", "exactly one call"),
    ("drop_doc", "expected a call"),
    ("remove_lines(line_start=1)", "missing line_end"),
    ("remove_lines(1, 2, 3)", "takes 2 arguments"),
    ("remove_lines(1, line_start=2)", "twice"),
    ("remove_lines(line_start=1, line_end=2, all=True)", "no parameter 'all'"),
    ("normalize(source_str=1, target_str='')", "must be str"),
    ("remove_lines(line_start='1', line_end=2)", "must be int"),
    ("remove_lines(line_start=10**100, line_end=2)", "must be a literal"),
    ("remove_lines(line_start=99999999999, line_end=2)", "beyond"),
    ("normalize(source_str=\"unbalanced, target_str='')", "not valid syntax"),
    ("remove_lines(" * 300, "not valid syntax"),
    ("__class__()", "unknown function"),
    ("drop_doc(\x00)", "not valid syntax"),
])
def test_rejects_with_reason(line: str, reason: str) -> None:
    with pytest.raises(Rejected, match=None) as e:
        parse_line(line)
    assert reason in str(e.value), str(e.value)


def test_program_keeps_order_and_counts_each_bad_line() -> None:
    p = parse_program("remove_lines(line_start=0, line_end=1)\n\n  junk here\nnormalize(\"a\", \"b\")\nos.x()\n", CHUNK_CALLS)
    assert [c.name for c in p.calls] == ["remove_lines", "normalize"]
    assert len(p.errors) == 2 and "line 2" in p.errors[0] and "line 4" in p.errors[1]


def test_stage_whitelists() -> None:
    p = parse_program("drop_doc()\nremove_lines(line_start=0, line_end=1)", DOC_CALLS)
    assert [c.name for c in p.calls] == ["drop_doc"] and "not allowed at this stage" in p.errors[0]
    p = parse_program("drop_doc()", CHUNK_CALLS)
    assert p.calls == [] and len(p.errors) == 1


def test_bounds() -> None:
    assert parse_program("x" * (MAX_PROGRAM_CHARS + 1)).fatal
    p = parse_program("keep_chunk()\n" * (MAX_CALLS + 5))
    assert p.fatal and len(p.calls) == MAX_CALLS
    p = parse_program('normalize(source_str="' + "a" * 5000 + '", target_str="")')
    assert p.calls == [] and "longer than" in p.errors[0]


def test_canonical_text_round_trips() -> None:
    for line in ['normalize(source_str="quote \\" and \\\\ and \\n", target_str="é")', "remove_lines(2, 3)", "keep_doc()"]:
        c = parse_line(line)
        assert parse_line(c.text) == c
